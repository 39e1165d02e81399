#!/usr/bin/env bash
# One-time set-up of a Google Cloud project for the relay. Safe to run again. (docs/deploy.md)
#
# Usage: deploy/setup.sh [options] < secrets
#   Standard input: line 1 the OpenAI API key, line 2 the access tokens (comma-separated, each
#   at least 16 characters). An empty line keeps a secret that already exists; no tokens at all
#   means no access-tokens secret. On a terminal it asks for each, without echoing.
#
#   --project ID                  Google Cloud project (default: $PROJECT, $CLOUDSDK_CORE_PROJECT,
#                                 $GOOGLE_CLOUD_PROJECT, else gcloud's configured project)
#   --key-secret NAME             the secret for OPENAI_API_KEY (default: relay-openai-api-key)
#   --tokens-secret NAME          the secret for ACCESS_TOKENS (default: relay-access-tokens)
#   --no-access-tokens            no access-tokens secret (deploy with --no-access-tokens then)
#   --runtime-account NAME        the service account the relay runs as (default: relay-runtime)
#   --build-service-account NAME  the service account that builds the relay from source on each
#                                 deploy (default: relay-build)
#   --build-account ACCOUNT       the service account Cloud Build runs cloudbuild.yaml as, given the roles
#                                 to deploy: a name (created in this project if missing, e.g. relay-deployer)
#                                 or an email (docs/deploy.md, "From Cloud Build")
#   --redis                       also create a Memorystore for Redis instance, relay-limits (small,
#                                 basic tier), for per-caller rate limits shared by every instance
#   --redis-instance NAME         the same, with this name
#     --region REGION             with --redis: the instance's region (default: $REGION or us-central1)
#     --network NAME              with --redis: its VPC network (default: default)
#   --dry-run                     print the gcloud commands instead of running them (reads no secrets)
#   EXTRA_SECRETS=VAR=secret,...  also let the runtime account read these (the keys of UPSTREAMS routes)
#
# It enables the APIs the deploy scripts use, creates the runtime service account and the build
# service account (with the roles a source deploy needs to build), creates or updates the two
# secrets in Secret Manager, and lets the runtime account read them; with --build-account, it
# gives that account what a deploy from Cloud Build needs, and nothing more.

set -euo pipefail
# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

BUILD_ACCOUNT=${BUILD_ACCOUNT:-}
parse_extra_flag() {
  case "$1" in
    --build-account) BUILD_ACCOUNT=${2:?--build-account needs a value}; EXTRA_USED=2 ;;
  esac
}

# What the build service account needs to build the relay from source: Cloud Run's Builder role
# for `gcloud run deploy --source` (docs: cloud.google.com/run/docs/configuring/services/build-service-account),
# and for `gcloud functions deploy` the roles its custom build account page lists
# (cloud.google.com/functions/docs/securing/build-custom-sa): build logs, images, the uploaded source.
BUILD_ROLES=(roles/run.builder roles/logging.logWriter roles/artifactregistry.writer roles/storage.objectViewer)
# What the account that runs cloudbuild.yaml (--build-account) needs on the project to run
# deploy/run.sh or deploy/function.sh, from Google's pages (docs/deploy.md, "From Cloud Build", says
# which needs each): deploy from source, and set who may call (Cloud Run Admin, for the invoker
# check or the allUsers grant; Cloud Run Source Developer and Service Usage Consumer for
# `gcloud run deploy --source`; roles/cloudfunctions.developer for `gcloud functions deploy`); write the
# build's own logs, as options.logging CLOUD_LOGGING_ONLY asks of a user-specified account.
# Besides these: Service Account User on the runtime and build accounts only, Secret Manager
# Viewer on each secret the deploy mounts, Storage Object Viewer on the bucket
# `gcloud builds submit` uploads to, and with --redis Redis Viewer.
BUILD_ACCOUNT_ROLES=(roles/run.admin roles/run.sourceDeveloper roles/cloudfunctions.developer
  roles/serviceusage.serviceUsageConsumer roles/logging.logWriter)
# A grant to an account created a moment ago can fail until IAM sees the account; retried.
GRANT_RETRY_SECONDS=${GRANT_RETRY_SECONDS:-10}

parse_flags "$@"
for flag in ${DEPLOY_FLAGS_GIVEN[@]+"${DEPLOY_FLAGS_GIVEN[@]}"}; do
  case "$flag" in --region | --network) [ -z "$REDIS_INSTANCE" ] || continue ;; esac
  die "$flag is an option of deploy/function.sh and deploy/run.sh, not of setup (see $0 --help)."
done
require_gcloud
require_project
read_extra_secrets  # checked before any step runs
runtime_email=$(runtime_account_email)
build_email=$(build_account_email)
deployer_email=""
[ -z "$BUILD_ACCOUNT" ] || deployer_email=$(account_email "$BUILD_ACCOUNT")
readable_secrets=()  # the secrets the runtime account may read: those a deploy mounts

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

# check_tokens TOKENS: each access token long enough to resist guessing; none is ever printed.
check_tokens() {
  local items=() token position=0
  case "$1" in *' '*) die "access tokens must not contain spaces." ;; esac
  IFS=',' read -r -a items <<<"$1,"  # the trailing comma keeps an empty last item visible
  for token in "${items[@]}"; do
    position=$((position + 1))
    if [ "${#token}" -lt "$MIN_TOKEN_LENGTH" ]; then
      die "access token $position is ${#token} characters long; each must be at least $MIN_TOKEN_LENGTH (the relay warns below that). Make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'. Nothing was changed."
    fi
  done
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

# grant COMMAND...: an add-iam-policy-binding, tried up to five times, GRANT_RETRY_SECONDS apart
# (a service account created a moment ago may not be visible to IAM yet).
grant() {
  local attempt=1
  until run "$@"; do
    [ "$attempt" -lt 5 ] || return 1
    echo "(grant failed, attempt $attempt of 5; trying again in $GRANT_RETRY_SECONDS s)" >&2
    sleep "$GRANT_RETRY_SECONDS"
    attempt=$((attempt + 1))
  done
}

grant_secret_access() {
  grant gcloud secrets add-iam-policy-binding "$1" --project="$PROJECT" \
    --member="serviceAccount:$runtime_email" --role=roles/secretmanager.secretAccessor --condition=None --quiet
  readable_secrets+=("$1")
}

grant_project_role() {
  grant gcloud projects add-iam-policy-binding "$PROJECT" --member="serviceAccount:$1" \
    --role="$2" --condition=None --quiet
}

# ensure_account EMAIL DISPLAY-NAME: create a service account unless it exists.
ensure_account() {
  if [ "$DRY_RUN" = true ]; then
    echo "# if the service account does not exist yet:"
    run gcloud iam service-accounts create "${1%%@*}" --project="$PROJECT" --display-name="$2"
  elif ! gcloud iam service-accounts describe "$1" --project="$PROJECT" >/dev/null 2>&1; then
    gcloud iam service-accounts create "${1%%@*}" --project="$PROJECT" --display-name="$2"
  fi
}

# 0. The secrets, read and checked before anything is changed.
if [ "$DRY_RUN" = true ]; then
  key="" tokens=""
else
  key=$(read_secret "OpenAI API key (empty: keep the stored one)")
  tokens=$(read_secret "Access tokens, comma-separated, each at least $MIN_TOKEN_LENGTH characters (empty: keep the stored ones, or none)")
  [ -z "$tokens" ] || check_tokens "$tokens"
fi

# 1. The APIs the deploy scripts use: Cloud Run and Cloud Run functions, the source build (Cloud
# Build, Artifact Registry, Cloud Storage for the upload), secrets, logs, service accounts and
# project roles (IAM, Resource Manager).
run gcloud services enable run.googleapis.com cloudfunctions.googleapis.com cloudbuild.googleapis.com \
  artifactregistry.googleapis.com storage.googleapis.com secretmanager.googleapis.com logging.googleapis.com \
  iam.googleapis.com cloudresourcemanager.googleapis.com --project="$PROJECT"
if [ -n "$REDIS_INSTANCE" ]; then
  # Memorystore, and Compute Engine for the VPC network that Direct VPC egress reaches it through.
  run gcloud services enable redis.googleapis.com compute.googleapis.com --project="$PROJECT"
fi

# 2. The runtime service account: it reads the relay's secrets and nothing else.
ensure_account "$runtime_email" "OpenAI stream relay"

# 2b. The build service account, passed to every source deploy (--build-service-account): new
# projects' default build account may lack what a build needs (docs/deploy.md, "Once per project").
ensure_account "$build_email" "OpenAI stream relay builds"
for role in "${BUILD_ROLES[@]}"; do
  grant_project_role "$build_email" "$role"
done

# 3. The secrets.
if [ -n "$key" ] || [ "$DRY_RUN" = true ]; then
  store_secret "$KEY_SECRET" "$key"
elif ! secret_exists "$KEY_SECRET"; then
  die "no OpenAI API key on standard input and no secret '$KEY_SECRET' yet: give the key on line 1."
fi
grant_secret_access "$KEY_SECRET"

if [ -n "$TOKENS_SECRET" ]; then
  if [ -n "$tokens" ] || [ "$DRY_RUN" = true ]; then
    store_secret "$TOKENS_SECRET" "$tokens"
    grant_secret_access "$TOKENS_SECRET"
  elif secret_exists "$TOKENS_SECRET"; then
    grant_secret_access "$TOKENS_SECRET"
  else
    warn "no access tokens: deploy with --no-access-tokens, and the URL stays private to IAM (docs/deploy.md, 'Who can call it')."
  fi
fi

# 3b. The secrets EXTRA_SECRETS names (keys of UPSTREAMS routes): readable by the runtime account.
for pair in ${EXTRA_PAIRS[@]+"${EXTRA_PAIRS[@]}"}; do
  secret=${pair#*=}
  if [ "$DRY_RUN" = false ] && ! secret_exists "$secret"; then
    die "EXTRA_SECRETS names the secret '$secret', which does not exist; create it first: printf '%s' \"\$KEY\" | gcloud secrets create $secret --data-file=- --project=$PROJECT"
  fi
  grant_secret_access "$secret"
done

# 4. Optional: Memorystore for Redis, for counters every instance shares. Small (1 GiB, the
# least), basic tier (no replica: a lost counter only resets a limit), on the given network.
if [ -n "$REDIS_INSTANCE" ]; then
  network=${NETWORK:-$DEFAULT_REDIS_NETWORK}
  if [ "$DRY_RUN" = true ]; then
    echo "# if the instance does not exist yet (creating one takes several minutes):"
  fi
  if [ "$DRY_RUN" = true ] ||
    ! gcloud redis instances describe "$REDIS_INSTANCE" --project="$PROJECT" --region="$REGION" >/dev/null 2>&1; then
    run gcloud redis instances create "$REDIS_INSTANCE" --project="$PROJECT" --region="$REGION" \
      --network="$network" --tier=basic --size=1
  fi
  # Direct VPC egress from a Cloud Run function needs its service account to hold Cloud Run
  # Invoker (cloud.google.com/functions/docs/running/direct-vpc, "Set up IAM permissions").
  grant_project_role "$runtime_email" roles/run.invoker
fi

# 5. Optional: the account Cloud Build runs cloudbuild.yaml as (a user-specified build service
# account, as Google recommends), with what deploy/run.sh and deploy/function.sh need there.
if [ -n "$deployer_email" ]; then
  # A name, or an email of this project's: created if missing. Another's (or a default account) must exist.
  case "$deployer_email" in *"@$PROJECT.iam.gserviceaccount.com")
    ensure_account "$deployer_email" "OpenAI stream relay deploys from Cloud Build" ;;
  esac
  for role in "${BUILD_ACCOUNT_ROLES[@]}"; do
    grant_project_role "$deployer_email" "$role"
  done
  # To look up the Memorystore instance's address on each deploy.
  [ -z "$REDIS_INSTANCE" ] || grant_project_role "$deployer_email" roles/redis.viewer
  # To deploy a service that runs as the runtime account and is built by the build account:
  # acting as these two, and no other (not project-wide).
  for account in "$runtime_email" "$build_email"; do
    grant gcloud iam service-accounts add-iam-policy-binding "$account" --project="$PROJECT" \
      --member="serviceAccount:$deployer_email" --role=roles/iam.serviceAccountUser --quiet
  done
  # To look up, on each deploy, the newest enabled version of each secret it mounts: their
  # metadata only, not their values.
  for secret in ${readable_secrets[@]+"${readable_secrets[@]}"}; do
    grant gcloud secrets add-iam-policy-binding "$secret" --project="$PROJECT" \
      --member="serviceAccount:$deployer_email" --role=roles/secretmanager.viewer --condition=None --quiet
  done
  # To read the source `gcloud builds submit` uploads (gs://PROJECT_cloudbuild/source/...), which
  # the build fetches as its own account: that bucket only. Made here unless it exists, as gcloud
  # would make it on the first submit.
  source_bucket="gs://${PROJECT}_cloudbuild"
  if [ "$DRY_RUN" = true ]; then
    echo "# if the bucket does not exist yet:"
  fi
  if [ "$DRY_RUN" = true ] || ! gcloud storage buckets describe "$source_bucket" --project="$PROJECT" >/dev/null 2>&1; then
    run gcloud storage buckets create "$source_bucket" --project="$PROJECT" --uniform-bucket-level-access \
      --public-access-prevention
  fi
  grant gcloud storage buckets add-iam-policy-binding "$source_bucket" --project="$PROJECT" \
    --member="serviceAccount:$deployer_email" --role=roles/storage.objectViewer
fi

echo "Set up $PROJECT. Next: deploy/function.sh or deploy/run.sh (docs/deploy.md)." >&2
if [ -n "$deployer_email" ]; then
  echo "Cloud Build runs cloudbuild.yaml as $deployer_email: give it --service-account=projects/$PROJECT/serviceAccounts/$deployer_email (docs/deploy.md, 'From Cloud Build')." >&2
fi
