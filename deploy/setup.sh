#!/usr/bin/env bash
# One-time set-up of a Google Cloud project for the relay. Safe to run again.
#
# Usage: deploy/setup.sh [options] < secrets
#   Standard input: line 1 the OpenAI API key, line 2 the access tokens (comma-separated).
#   An empty line keeps a secret that already exists; no tokens at all means no access-tokens secret.
#   On a terminal it asks for each, without echoing.
#
#   --project ID             Google Cloud project (default: $PROJECT, else gcloud's configured project)
#   --key-secret NAME        the secret for OPENAI_API_KEY (default: relay-openai-api-key)
#   --tokens-secret NAME     the secret for ACCESS_TOKENS (default: relay-access-tokens)
#   --runtime-account NAME   the service account the relay runs as (default: relay-runtime)
#   --build-account EMAIL    also let this account deploy from Cloud Build (cloudbuild.yaml)
#   --dry-run                print the gcloud commands instead of running them (reads no secrets)
#   EXTRA_SECRETS=VAR=secret,...  also let the runtime account read these (the keys of UPSTREAMS routes)
#
# It enables the APIs, creates the runtime service account, creates or updates the two secrets
# in Secret Manager, and lets the runtime account read them (roles/secretmanager.secretAccessor).

set -euo pipefail
# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

BUILD_ACCOUNT=${BUILD_ACCOUNT:-}
parse_extra_flag() {
  case "$1" in
    --build-account) BUILD_ACCOUNT=${2:?--build-account needs a value}; EXTRA_USED=2 ;;
  esac
}

parse_flags "$@"
if [ ${#DEPLOY_FLAGS_GIVEN[@]} -gt 0 ]; then
  die "${DEPLOY_FLAGS_GIVEN[0]} is an option of deploy/function.sh and deploy/run.sh, not of setup (see $0 --help)."
fi
require_gcloud
require_project
read_extra_secrets  # checked before any step runs
runtime_email=$(runtime_account_email)

# read_secret PROMPT: a line from standard input (asked for, unechoed, on a terminal).
read_secret() {
  local value=""
  if [ -t 0 ]; then
    read -r -s -p "$1: " value || true
    echo >&2
  else
    IFS= read -r value || true
  fi
  printf '%s' "$value"
}

secret_exists() {
  [ "$DRY_RUN" = false ] && gcloud secrets describe "$1" --project="$PROJECT" >/dev/null 2>&1
}

# store_secret NAME VALUE: a new secret, or a new version of an existing one. The value goes
# through standard input, never the command line, so no process list or log shows it.
store_secret() {
  local name=$1 value=$2
  if [ "$DRY_RUN" = true ]; then
    echo "# the value from standard input goes to:"
    run gcloud secrets create "$name" --project="$PROJECT" --replication-policy=automatic --data-file=-
    echo "# or, if it exists:"
    run gcloud secrets versions add "$name" --project="$PROJECT" --data-file=-
  elif secret_exists "$name"; then
    printf '%s' "$value" | gcloud secrets versions add "$name" --project="$PROJECT" --data-file=-
  else
    printf '%s' "$value" | gcloud secrets create "$name" --project="$PROJECT" --replication-policy=automatic --data-file=-
  fi
}

grant_secret_access() {
  run gcloud secrets add-iam-policy-binding "$1" --project="$PROJECT" \
    --member="serviceAccount:$runtime_email" --role=roles/secretmanager.secretAccessor --condition=None --quiet
}

# 1. The APIs the deploy scripts use.
run gcloud services enable run.googleapis.com cloudfunctions.googleapis.com cloudbuild.googleapis.com \
  artifactregistry.googleapis.com secretmanager.googleapis.com logging.googleapis.com --project="$PROJECT"

# 2. The runtime service account: it reads the relay's secrets and nothing else.
if [ "$DRY_RUN" = true ]; then
  echo "# if the service account does not exist yet:"
  run gcloud iam service-accounts create "${runtime_email%%@*}" --project="$PROJECT" --display-name="OpenAI stream relay"
elif ! gcloud iam service-accounts describe "$runtime_email" --project="$PROJECT" >/dev/null 2>&1; then
  gcloud iam service-accounts create "${runtime_email%%@*}" --project="$PROJECT" --display-name="OpenAI stream relay"
fi

# 3. The secrets.
if [ "$DRY_RUN" = true ]; then
  key="" tokens=""
else
  key=$(read_secret "OpenAI API key (empty: keep the stored one)")
  tokens=$(read_secret "Access tokens, comma-separated (empty: keep the stored ones, or none)")
fi
if [ -n "$key" ] || [ "$DRY_RUN" = true ]; then
  store_secret "$KEY_SECRET" "$key"
elif ! secret_exists "$KEY_SECRET"; then
  die "no OpenAI API key on standard input and no secret '$KEY_SECRET' yet: give the key on line 1."
fi
grant_secret_access "$KEY_SECRET"

if [ -n "$TOKENS_SECRET" ]; then
  if [ -n "$tokens" ] || [ "$DRY_RUN" = true ]; then
    case "$tokens" in *' '*) die "access tokens must not contain spaces." ;; esac
    store_secret "$TOKENS_SECRET" "$tokens"
    grant_secret_access "$TOKENS_SECRET"
  elif secret_exists "$TOKENS_SECRET"; then
    grant_secret_access "$TOKENS_SECRET"
  else
    warn "no access tokens: deploy with --no-access-tokens, and the URL stays private to IAM (README, 'Deploy')."
  fi
fi

# 3b. The secrets EXTRA_SECRETS names (keys of UPSTREAMS routes): readable by the runtime account.
for pair in "${EXTRA_PAIRS[@]}"; do
  secret=${pair#*=}
  if [ "$DRY_RUN" = false ] && ! secret_exists "$secret"; then
    die "EXTRA_SECRETS names the secret '$secret', which does not exist; create it first: printf '%s' \"\$KEY\" | gcloud secrets create $secret --data-file=- --project=$PROJECT"
  fi
  grant_secret_access "$secret"
done

# 4. Optional: what Cloud Build's account needs to run deploy/function.sh or deploy/run.sh.
if [ -n "$BUILD_ACCOUNT" ]; then
  for role in roles/run.admin roles/cloudfunctions.developer roles/cloudbuild.builds.editor \
    roles/artifactregistry.admin roles/storage.admin; do
    run gcloud projects add-iam-policy-binding "$PROJECT" --member="serviceAccount:$BUILD_ACCOUNT" \
      --role="$role" --condition=None --quiet
  done
  run gcloud iam service-accounts add-iam-policy-binding "$runtime_email" --project="$PROJECT" \
    --member="serviceAccount:$BUILD_ACCOUNT" --role=roles/iam.serviceAccountUser --quiet
fi

echo "Set up $PROJECT. Next: deploy/function.sh or deploy/run.sh (README, 'Deploy')." >&2
