# shellcheck shell=bash disable=SC2034  # settings here are used by the scripts that source this file
# Shared by deploy/setup.sh, deploy/function.sh and deploy/run.sh: settings, checks, and running
# (or, with --dry-run, printing) gcloud commands. Sourced, not run.

DEPLOY_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT_DIR=$(dirname "$DEPLOY_DIR")

# Defaults; each can be set by a flag or by the environment variable of the same name.
PROJECT=${PROJECT:-${CLOUDSDK_CORE_PROJECT:-}}
REGION=${REGION:-us-central1}
SERVICE=${SERVICE:-openai-stream-relay}
KEY_SECRET=${KEY_SECRET:-relay-openai-api-key}
TOKENS_SECRET=${TOKENS_SECRET-relay-access-tokens}
RUNTIME_ACCOUNT=${RUNTIME_ACCOUNT:-relay-runtime}
PYTHON_RUNTIME=python312
MEMORY=${MEMORY:-512Mi}
MAX_INSTANCES=${MAX_INSTANCES:-10}
DRY_RUN=false
PUBLIC=false
PRIVATE=false
DEPLOY_FLAGS_GIVEN=()  # flags only the deploy scripts use (setup.sh refuses them)

# The relay's own settings, passed on to the deployment when set here (never the secrets).
RELAY_SETTINGS=(
  OPENAI_BASE_URL OPENAI_ORG_ID OPENAI_PROJECT_ID
  ALLOW_CLIENT_KEYS ALLOWED_ORIGINS ALLOWED_MODELS MAX_TOKENS_LIMIT MAX_BODY_BYTES
  UPSTREAM_CONNECT_TIMEOUT UPSTREAM_FIRST_BYTE_TIMEOUT UPSTREAM_IDLE_TIMEOUT STREAM_MAX_SECONDS REQUEST_BODY_TIMEOUT
  UPSTREAM_MAX_CONNECTIONS UPSTREAM_RETRIES UPSTREAM_RETRY_MAX_WAIT STREAM_USAGE SERVE_PAGE UPSTREAMS
)
# More secrets, for the keys UPSTREAMS routes name: "OPENROUTER_API_KEY=relay-openrouter-key,...".
EXTRA_SECRETS=${EXTRA_SECRETS:-}

die() {
  echo "error: $*" >&2
  exit 1
}

warn() {
  echo "warning: $*" >&2
}

# The usage text is the comment block at the top of the calling script.
usage() {
  sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'
}

# parse_flags "$@": the shared flags. A script with flags of its own defines
# parse_extra_flag, which sets EXTRA_USED to the number of arguments it took (0: unknown).
parse_flags() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}"; continue ;;  # --flag=value is --flag value
      -h | --help) usage; exit 0 ;;
      --project) PROJECT=${2:?--project needs a value}; shift 2 ;;
      --region) DEPLOY_FLAGS_GIVEN+=("$1"); REGION=${2:?--region needs a value}; shift 2 ;;
      --name) DEPLOY_FLAGS_GIVEN+=("$1"); SERVICE=${2:?--name needs a value}; shift 2 ;;
      --key-secret) KEY_SECRET=${2:?--key-secret needs a value}; shift 2 ;;
      --tokens-secret) TOKENS_SECRET=${2:?--tokens-secret needs a value}; shift 2 ;;
      --no-access-tokens) TOKENS_SECRET=""; shift ;;
      --runtime-account) RUNTIME_ACCOUNT=${2:?--runtime-account needs a value}; shift 2 ;;
      --memory) DEPLOY_FLAGS_GIVEN+=("$1"); MEMORY=${2:?--memory needs a value}; shift 2 ;;
      --max-instances) DEPLOY_FLAGS_GIVEN+=("$1"); MAX_INSTANCES=${2:?--max-instances needs a value}; shift 2 ;;
      --public) DEPLOY_FLAGS_GIVEN+=("$1"); PUBLIC=true; shift ;;
      --private) DEPLOY_FLAGS_GIVEN+=("$1"); PRIVATE=true; shift ;;
      --dry-run) DRY_RUN=true; shift ;;
      *)
        EXTRA_USED=0
        if declare -F parse_extra_flag >/dev/null; then parse_extra_flag "$@"; fi
        [ "$EXTRA_USED" -gt 0 ] || die "unknown option '$1' (see $0 --help)"
        shift "$EXTRA_USED"
        ;;
    esac
  done
}

require_gcloud() {
  if [ "$DRY_RUN" = false ] && ! command -v gcloud >/dev/null 2>&1; then
    die "gcloud is not installed or not on PATH. Install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install), run 'gcloud auth login', or use --dry-run to see the commands."
  fi
}

require_project() {
  if [ -z "$PROJECT" ] && command -v gcloud >/dev/null 2>&1; then
    PROJECT=$(gcloud config get-value project 2>/dev/null || true)
  fi
  [ -n "$PROJECT" ] || die "no Google Cloud project: pass --project PROJECT_ID, set PROJECT, or run 'gcloud config set project PROJECT_ID'."
}

runtime_account_email() {
  case "$RUNTIME_ACCOUNT" in
    *@*) echo "$RUNTIME_ACCOUNT" ;;
    *) echo "$RUNTIME_ACCOUNT@$PROJECT.iam.gserviceaccount.com" ;;
  esac
}

# run COMMAND...: run it, or with --dry-run print it, quoted so that a shell would run it as is.
run() {
  if [ "$DRY_RUN" = true ]; then
    local words=() arg
    for arg in "$@"; do
      if [[ "$arg" =~ ^[A-Za-z0-9_./:=@,+-]+$ ]]; then
        words+=("$arg")
      else
        words+=("'${arg//\'/\'\\\'\'}'")
      fi
    done
    echo "${words[*]}"
  else
    "$@"
  fi
}

# The value of NAME in deploy/server.env.
server_setting() {
  sed -n "s/^$1=//p" "$DEPLOY_DIR/server.env"
}

# The longest a request can last (Settings.longest_request_seconds in relay/config.py)
# plus a minute, as the platform's timeout: the relay normally ends a reply before it (README, "Timeouts").
request_timeout_seconds() {
  local connect=${UPSTREAM_CONNECT_TIMEOUT:-10} first=${UPSTREAM_FIRST_BYTE_TIMEOUT:-120}
  local stream=${STREAM_MAX_SECONDS:-900} idle=${UPSTREAM_IDLE_TIMEOUT:-60}
  local total
  total=$(awk -v c="$connect" -v f="$first" -v s="$stream" -v i="$idle" \
    'BEGIN { w = c + f; longest = (w > s ? w : s) + i; t = longest + 60; printf "%d", (t == int(t) ? t : int(t) + 1) }')
  [ "$total" -le 3600 ] || die "the longest request plus 60 s is $total s, over the platform's 3600 s limit (README, 'Timeouts')."
  echo "$total"
}

# --set-env-vars value: deploy/server.env, the project (for log traces), and the relay settings set here.
# gcloud's ^|^ prefix makes | the separator, so that values may hold commas (ALLOWED_ORIGINS).
env_vars_flag() {
  local pairs=() name value
  while IFS='=' read -r name value; do
    case "$name" in '' | '#'*) continue ;; esac
    pairs+=("$name=$value")
  done <"$DEPLOY_DIR/server.env"
  pairs+=("GOOGLE_CLOUD_PROJECT=$PROJECT")
  for name in "${RELAY_SETTINGS[@]}"; do
    value=${!name-}
    if [ -n "$value" ]; then
      case "$value" in *'|'*) die "$name must not contain '|'." ;; esac
      pairs+=("$name=$value")
    fi
  done
  local joined
  joined=$(IFS='|'; echo "${pairs[*]}")
  echo "^|^$joined"
}

# --set-secrets value: the key, and the access tokens unless --no-access-tokens; never plain variables.
secrets_flag() {
  local secrets="OPENAI_API_KEY=$KEY_SECRET:latest" pair
  [ -z "$TOKENS_SECRET" ] || secrets="$secrets,ACCESS_TOKENS=$TOKENS_SECRET:latest"
  read_extra_secrets
  for pair in "${EXTRA_PAIRS[@]}"; do
    secrets="$secrets,${pair%%=*}=${pair#*=}:latest"
  done
  echo "$secrets"
}

# EXTRA_SECRETS (VARIABLE=secret-name,...), the secrets of UPSTREAMS routes' keys, into the
# array EXTRA_PAIRS; a malformed item stops the script.
read_extra_secrets() {
  local pair items=()
  EXTRA_PAIRS=()
  IFS=',' read -r -a items <<<"$EXTRA_SECRETS"
  for pair in "${items[@]}"; do
    case "$pair" in
      '') ;;
      ?*=?*) EXTRA_PAIRS+=("$pair") ;;
      *) die "EXTRA_SECRETS items are VARIABLE=secret-name, got '$pair'." ;;
    esac
  done
}

# --allow-unauthenticated only when the relay checks access tokens itself, or when asked for.
access_flag() {
  if [ "$PRIVATE" = true ]; then
    echo "--no-allow-unauthenticated"
  elif [ -n "$TOKENS_SECRET" ]; then
    echo "--allow-unauthenticated"
  elif [ "$PUBLIC" = true ]; then
    warn "--public without access tokens: ANYONE WHO FINDS THE URL CAN SPEND YOUR OPENAI KEY."
    echo "--allow-unauthenticated"
  else
    echo "--no-allow-unauthenticated"
  fi
}

# The start every deploy script shares: flags, checks, and the platform settings it derives.
prepare_deploy() {
  parse_flags "$@"
  require_gcloud
  require_project
  warn_about_plain_secrets
  load_relay_settings
  # Each in an assignment of its own, so that a check failing inside stops the script (set -e
  # does not see a failure inside $(...) used as a command's argument).
  TIMEOUT=$(request_timeout_seconds)
  CONCURRENCY=$(server_setting THREADS)  # = gevent's connections per worker process
  CPU=$(server_setting WORKERS)  # one worker process per vCPU
  ENV_VARS=$(env_vars_flag)
  SECRETS=$(secrets_flag)
  ACCESS=$(access_flag)
  # The same on both targets (tests/test_deploy.py checks them on each).
  SHARED_FLAGS=(
    --memory="$MEMORY"
    --cpu="$CPU"
    --concurrency="$CONCURRENCY"
    --min-instances=0
    --max-instances="$MAX_INSTANCES"
    --service-account="$(runtime_account_email)"
    --set-env-vars="$ENV_VARS"
    --set-secrets="$SECRETS"
    "$ACCESS"
    --quiet
  )
  cd "$ROOT_DIR" || exit 1
}

# deploy/relay.env, committed with the code, holds the owner's relay settings, so that every
# deploy (by hand, or from Cloud Build) ships the same ones; a variable set in the shell wins.
load_relay_settings() {
  local file="$DEPLOY_DIR/relay.env" name value
  [ -f "$file" ] || return 0
  while IFS='=' read -r name value; do
    case "$name" in '' | '#'*) continue ;; esac
    if ! printf '%s\n' "${RELAY_SETTINGS[@]}" | grep -qx "$name"; then
      die "deploy/relay.env sets $name, which is not one of the relay's settings (README, 'Configuration')."
    fi
    [ -n "${!name-}" ] || printf -v "$name" '%s' "$value"
  done <"$file"
}

warn_about_plain_secrets() {
  local name
  for name in OPENAI_API_KEY ACCESS_TOKENS; do
    if [ -n "${!name-}" ]; then
      warn "$name is set in this shell and is NOT deployed as a plain variable; the deployment reads it from Secret Manager (deploy/setup.sh)."
    fi
  done
}
