# shellcheck shell=bash disable=SC2034  # settings here are used by the scripts that source this file
# Shared by deploy/setup.sh, deploy/function.sh and deploy/run.sh: settings, checks, and running
# (or, with --dry-run, printing) gcloud commands. Sourced, not run. The runbook: docs/deploy.md.

DEPLOY_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT_DIR=$(dirname "$DEPLOY_DIR")

# The project, first found: --project; PROJECT; CLOUDSDK_CORE_PROJECT (gcloud's own override, so
# these scripts and a plain `gcloud` in the same shell agree); GOOGLE_CLOUD_PROJECT (what Cloud
# Shell sets for the project it was opened for; gcloud itself ignores it); then gcloud's
# configured project (kept on disk across sessions, so the likeliest to be stale).
# require_project says which one it took.
if [ -n "${PROJECT:-}" ]; then
  PROJECT_FROM=PROJECT
elif [ -n "${CLOUDSDK_CORE_PROJECT:-}" ]; then
  PROJECT=$CLOUDSDK_CORE_PROJECT PROJECT_FROM=CLOUDSDK_CORE_PROJECT
elif [ -n "${GOOGLE_CLOUD_PROJECT:-}" ]; then
  PROJECT=$GOOGLE_CLOUD_PROJECT PROJECT_FROM=GOOGLE_CLOUD_PROJECT
else
  PROJECT="" PROJECT_FROM=""
fi

# Defaults; each can be set by a flag or by the environment variable of the same name.
REGION=${REGION:-us-central1}
SERVICE=${SERVICE:-openai-stream-relay}
KEY_SECRET=${KEY_SECRET:-relay-openai-api-key}
TOKENS_SECRET=${TOKENS_SECRET-relay-access-tokens}
RUNTIME_ACCOUNT=${RUNTIME_ACCOUNT:-relay-runtime}
BUILD_SERVICE_ACCOUNT=${BUILD_SERVICE_ACCOUNT:-relay-build}
PYTHON_RUNTIME=python312
MEMORY=${MEMORY:-2Gi}  # --concurrency streams as measured, with room; not all at their bounds (docs/design.md, "Capacity")
MAX_INSTANCES=${MAX_INSTANCES:-10}
# Flags only, so that nothing left in a shell turns them on: Memorystore and Direct VPC egress.
DEFAULT_REDIS_INSTANCE=relay-limits
DEFAULT_REDIS_NETWORK=default  # setup.sh --redis: the instance's VPC network unless --network
REDIS_INSTANCE=""
NETWORK=""
SUBNET=""
DRY_RUN=false
PUBLIC=false
PRIVATE=false
DEPLOY_FLAGS_GIVEN=()  # flags only the deploy scripts use (setup.sh refuses them)
# The relay refuses nothing shorter, but warns below this; setup.sh refuses it.
MIN_TOKEN_LENGTH=16

# The relay's own settings, passed on to the deployment when set (never the secrets). Each comes
# from the shell, a flag, or deploy/relay.env; FROM_<NAME> says which, for the deploy's report.
RELAY_SETTINGS=(
  OPENAI_BASE_URL OPENAI_ORG_ID OPENAI_PROJECT_ID ANTHROPIC_BASE_URL
  ALLOW_CLIENT_KEYS ALLOWED_ORIGINS ALLOWED_MODELS MAX_TOKENS_LIMIT MAX_BODY_BYTES
  UPSTREAM_CONNECT_TIMEOUT UPSTREAM_FIRST_BYTE_TIMEOUT UPSTREAM_IDLE_TIMEOUT STREAM_MAX_SECONDS REQUEST_BODY_TIMEOUT STREAM_KEEPALIVE_SECONDS
  UPSTREAM_MAX_CONNECTIONS UPSTREAM_RETRIES UPSTREAM_RETRY_MAX_WAIT STREAM_USAGE SERVE_PAGE UPSTREAMS
  PUBLIC_URL ALLOW_PRIVATE_NETWORK ALLOWED_FIELDS UNSUPPORTED_TOOLS OPENAI_RESPONSES_API
  MAX_REQUESTS_PER_CALLER CLIENT_IP_HOPS RATE_LIMIT_REQUESTS RATE_LIMIT_TOKENS CALLER_LIMITS
  BUDGET_TOKENS MODEL_BUDGETS REDIS_URL LIMITS_STORE_TIMEOUT LIMITS_ON_STORE_ERROR SHUTDOWN_GRACE_SECONDS
)
for _name in "${RELAY_SETTINGS[@]}"; do
  [ -z "${!_name-}" ] || printf -v "FROM_$_name" '%s' "this shell"
done
unset _name
# More secrets, for the keys UPSTREAMS routes name: "OPENROUTER_API_KEY=relay-openrouter-key,...".
EXTRA_SECRETS=${EXTRA_SECRETS:-}
EXTRA_PAIRS=()

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

# set_by_flag FLAG VALUE: a relay setting given as a flag, for this deploy only.
set_by_flag() {
  local name
  case "$1" in
    --allowed-models) name=ALLOWED_MODELS ;;
    --max-tokens-limit) name=MAX_TOKENS_LIMIT ;;
    --allowed-origins) name=ALLOWED_ORIGINS ;;
  esac
  printf -v "$name" '%s' "$2"
  printf -v "FROM_$name" '%s' "$1"
}

# parse_flags "$@": the shared flags. A script with flags of its own defines
# parse_extra_flag, which sets EXTRA_USED to the number of arguments it took (0: unknown).
parse_flags() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}"; continue ;;  # --flag=value is --flag value
      -h | --help) usage; exit 0 ;;
      --project) PROJECT=${2:?--project needs a value} PROJECT_FROM=--project; shift 2 ;;
      --region) DEPLOY_FLAGS_GIVEN+=("$1"); REGION=${2:?--region needs a value}; shift 2 ;;
      --name) DEPLOY_FLAGS_GIVEN+=("$1"); SERVICE=${2:?--name needs a value}; shift 2 ;;
      --key-secret) KEY_SECRET=${2:?--key-secret needs a value}; shift 2 ;;
      --tokens-secret) TOKENS_SECRET=${2:?--tokens-secret needs a value}; shift 2 ;;
      --no-access-tokens) TOKENS_SECRET=""; shift ;;
      --runtime-account) RUNTIME_ACCOUNT=${2:?--runtime-account needs a value}; shift 2 ;;
      --build-service-account) BUILD_SERVICE_ACCOUNT=${2:?--build-service-account needs a value}; shift 2 ;;
      --memory) DEPLOY_FLAGS_GIVEN+=("$1"); MEMORY=${2:?--memory needs a value}; shift 2 ;;
      --max-instances) DEPLOY_FLAGS_GIVEN+=("$1"); MAX_INSTANCES=${2:?--max-instances needs a value}; shift 2 ;;
      --public) DEPLOY_FLAGS_GIVEN+=("$1"); PUBLIC=true; shift ;;
      --private) DEPLOY_FLAGS_GIVEN+=("$1"); PRIVATE=true; shift ;;
      --allowed-models | --max-tokens-limit | --allowed-origins)
        DEPLOY_FLAGS_GIVEN+=("$1"); set_by_flag "$1" "${2:?$1 needs a value}"; shift 2 ;;
      --redis) REDIS_INSTANCE=$DEFAULT_REDIS_INSTANCE; shift ;;
      # An empty name means none (cloudbuild.yaml's default _REDIS_INSTANCE).
      --redis-instance) [ $# -ge 2 ] || die "--redis-instance needs a value"; REDIS_INSTANCE=$2; shift 2 ;;
      --network) DEPLOY_FLAGS_GIVEN+=("$1"); NETWORK=${2:?--network needs a value}; shift 2 ;;
      --subnet) DEPLOY_FLAGS_GIVEN+=("$1"); SUBNET=${2:?--subnet needs a value}; shift 2 ;;
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
    PROJECT_FROM="gcloud config"
  fi
  [ -n "$PROJECT" ] || die "no Google Cloud project: pass --project PROJECT_ID, set PROJECT (or CLOUDSDK_CORE_PROJECT, or GOOGLE_CLOUD_PROJECT as Cloud Shell does), or run 'gcloud config set project PROJECT_ID'."
  echo "Project: $PROJECT (from $PROJECT_FROM)." >&2
}

# account_email NAME-OR-EMAIL: a service account's email; a bare name is one of this project's.
account_email() {
  case "$1" in
    *@*) echo "$1" ;;
    *) echo "$1@$PROJECT.iam.gserviceaccount.com" ;;
  esac
}

runtime_account_email() {
  account_email "$RUNTIME_ACCOUNT"
}

build_account_email() {
  account_email "$BUILD_SERVICE_ACCOUNT"
}

# The build service account as --build-service-account takes it:
# projects/PROJECT/serviceAccounts/EMAIL, PROJECT being the one the account lives in.
build_account_resource() {
  local email project=$PROJECT
  email=$(build_account_email)
  case "$email" in *@*.iam.gserviceaccount.com)
    project=${email#*@}
    project=${project%.iam.gserviceaccount.com}
    ;;
  esac
  echo "projects/$project/serviceAccounts/$email"
}

# run COMMAND...: run it, or with --dry-run print it, quoted so that a shell would run it as is.
run() {
  if [ "$DRY_RUN" = true ]; then
    quoted "$@"
  else
    "$@"
  fi
}

quoted() {
  local words=() arg
  for arg in "$@"; do
    if [[ "$arg" =~ ^[A-Za-z0-9_./:=@,+-]+$ ]]; then
      words+=("$arg")
    else
      words+=("'${arg//\'/\'\\\'\'}'")
    fi
  done
  echo "${words[*]}"
}

# The value of NAME in deploy/server.env.
server_setting() {
  sed -n "s/^$1=//p" "$DEPLOY_DIR/server.env"
}

# The longest a request can last (Settings.longest_request_seconds in relay/config/settings.py)
# plus a minute, as the platform's timeout: the relay normally ends a reply before it (docs/configuration.md, "Timeouts").
request_timeout_seconds() {
  local connect=${UPSTREAM_CONNECT_TIMEOUT:-10} first=${UPSTREAM_FIRST_BYTE_TIMEOUT:-120}
  local stream=${STREAM_MAX_SECONDS:-900} idle=${UPSTREAM_IDLE_TIMEOUT:-300}
  local total
  total=$(awk -v c="$connect" -v f="$first" -v s="$stream" -v i="$idle" \
    'BEGIN { w = c + f; longest = (w > s ? w : s) + i; t = longest + 60; printf "%d", (t == int(t) ? t : int(t) + 1) }')
  [ "$total" -le 3600 ] || die "the longest request plus 60 s is $total s, over the platform's 3600 s limit (docs/configuration.md, 'Timeouts')."
  echo "$total"
}

# EXTRA_SECRETS (VARIABLE=secret-name,...), the secrets of UPSTREAMS routes' keys, into the
# array EXTRA_PAIRS; a malformed item stops the script.
read_extra_secrets() {
  local pair items=()
  EXTRA_PAIRS=()
  IFS=',' read -r -a items <<<"$EXTRA_SECRETS"
  for pair in ${items[@]+"${items[@]}"}; do
    case "$pair" in
      '') ;;
      ?*=?*) EXTRA_PAIRS+=("$pair") ;;
      *) die "EXTRA_SECRETS items are VARIABLE=secret-name, got '$pair'." ;;
    esac
  done
}

# The secrets the deployment reads, as VARIABLE=secret lines: the key, the access tokens unless
# --no-access-tokens, and EXTRA_SECRETS.
secret_pairs() {
  local pair
  echo "OPENAI_API_KEY=$KEY_SECRET"
  [ -z "$TOKENS_SECRET" ] || echo "ACCESS_TOKENS=$TOKENS_SECRET"
  for pair in ${EXTRA_PAIRS[@]+"${EXTRA_PAIRS[@]}"}; do
    echo "$pair"
  done
}

# The variables the deployment reads from Secret Manager.
secret_names() {
  local pair
  while read -r pair; do
    echo "${pair%%=*}"
  done < <(secret_pairs)
}

# The read-only lookup of a secret's newest enabled version (its resource name comes first).
secret_version_lookup() {
  SECRET_LOOKUP=(gcloud secrets versions list "$1" --project="$PROJECT" --filter=state:ENABLED
    --sort-by=~createTime --format='value(name)')
}

# newest_enabled_version SECRET: the number of its newest enabled version. Returns 1 when the
# versions cannot be listed (no such secret, or no right to list them), 2 when none is enabled.
newest_enabled_version() {
  local names newest
  secret_version_lookup "$1"
  names=$("${SECRET_LOOKUP[@]}" </dev/null) || return 1
  newest=${names%%$'\n'*}  # projects/NUMBER/secrets/NAME/versions/N
  newest=${newest##*/}
  [[ "$newest" =~ ^[0-9]+$ ]] || return 2
  echo "$newest"
}

# SECRETS, the --set-secrets value: each secret at the number of its newest enabled version, looked
# up on every deploy (read-only, so even with --dry-run), never :latest. The platform reads a
# secret into the environment when an instance starts, so with :latest each instance of a revision
# would take whichever version was newest at its start: a new version would reach a running
# revision as it scales, and rolling back would not bring the old value back. Pinned, a revision
# keeps the values it was deployed with, as Google recommends for secrets in environment variables
# (cloud.google.com/run/docs/configuring/secrets); rotating is a new version and a deploy
# (docs/deploy.md, "Rotate a key or a token").
pin_secret_versions() {
  local pair name secret version status problem pinned=() shown=""
  local look=true
  if [ "$DRY_RUN" = true ] && ! command -v gcloud >/dev/null 2>&1; then
    look=false
    warn "gcloud is not here, so --dry-run shows each secret as :latest; a deploy mounts the number of its newest enabled version instead."
  fi
  while read -r pair; do
    name=${pair%%=*} secret=${pair#*=} version=latest
    if [ "$look" = true ]; then
      secret_version_lookup "$secret"
      [ "$DRY_RUN" = false ] || echo "# looked up (read-only, so run even with --dry-run): $(quoted "${SECRET_LOOKUP[@]}")"
      status=0
      version=$(newest_enabled_version "$secret") || status=$?
      case "$status" in
        0) shown+="${shown:+, }$name=$secret version $version" ;;
        2) problem="the secret '$secret' ($name) has no enabled version in $PROJECT: add one (deploy/setup.sh, or gcloud secrets versions add $secret --data-file=- --project=$PROJECT), or enable one (gcloud secrets versions enable N --secret=$secret --project=$PROJECT)" ;;
        *) problem="could not list the versions of the secret '$secret' ($name) in $PROJECT (above): it does not exist, or this account may not list them (Secret Manager Viewer, roles/secretmanager.viewer, which deploy/setup.sh --build-account grants the Cloud Build account)" ;;
      esac
      if [ "$status" -ne 0 ]; then
        [ "$DRY_RUN" = true ] || die "$problem. Nothing was deployed."
        warn "$problem. A deploy would stop here; --dry-run shows it as :latest."
        version=latest
      fi
    fi
    pinned+=("$name=$secret:$version")
  done < <(secret_pairs)
  SECRETS=$(IFS=,; echo "${pinned[*]}")
  [ -z "$shown" ] || echo "Secret versions this deploy mounts (the newest enabled of each): $shown." >&2
}

# DEPLOY_ENV: the plain variables the deployment gets, as NAME=value: deploy/server.env, the
# project (for log traces), and the relay settings set here. Both --set-env-vars and the
# configuration check are built from it, so that what is checked is what is deployed.
collect_deploy_env() {
  local name value secret
  DEPLOY_ENV=()
  while IFS='=' read -r name value; do
    case "$name" in '' | '#'*) continue ;; esac
    DEPLOY_ENV+=("$name=$value")
  done <"$DEPLOY_DIR/server.env"
  DEPLOY_ENV+=("GOOGLE_CLOUD_PROJECT=$PROJECT")
  for name in "${RELAY_SETTINGS[@]}"; do
    value=${!name-}
    [ -n "$value" ] || continue
    # gcloud's ^|^ prefix makes | the separator, so that values may hold commas (ALLOWED_ORIGINS).
    case "$value" in *'|'*) die "$name must not contain '|'." ;; esac
    while read -r secret; do
      [ "$secret" != "$name" ] || die "$name is set (from $(setting_source "$name")) and also comes from Secret Manager (EXTRA_SECRETS); keep one of them."
    done < <(secret_names)
    DEPLOY_ENV+=("$name=$value")
  done
  # A deploy uploads only main.py, relay/ and requirements.txt (.gcloudignore): a file named here would be missing.
  case "${UPSTREAMS:-[}" in '['*) ;; *) die "UPSTREAMS must be the JSON itself in a deployment, not the path of a file: a deploy uploads only main.py, relay/ and requirements.txt." ;; esac
}

# Who may call the URL: with access tokens the relay refuses a request without one itself, so
# the URL is public; without them it is private to IAM, unless --public; --private keeps IAM
# either way. IS_PUBLIC says which; ACCESS_FLAGS are the calling script's gcloud flags for it
# (PUBLIC_ACCESS_FLAGS or PRIVATE_ACCESS_FLAGS, which each script sets for its command).
choose_access() {
  if [ "$PRIVATE" = true ]; then
    IS_PUBLIC=false
  elif [ -n "$TOKENS_SECRET" ]; then
    IS_PUBLIC=true
  elif [ "$PUBLIC" = true ]; then
    warn "--public without access tokens: ANYONE WHO FINDS THE URL CAN SPEND YOUR OPENAI KEY."
    IS_PUBLIC=true
  else
    IS_PUBLIC=false
  fi
  if [ "$IS_PUBLIC" = true ]; then
    ACCESS_FLAGS=("${PUBLIC_ACCESS_FLAGS[@]}")
  else
    ACCESS_FLAGS=("${PRIVATE_ACCESS_FLAGS[@]}")
  fi
}

# The start every deploy script shares: flags, checks, and the platform settings it derives.
# The script sets first what its gcloud command calls things: VPC_EGRESS_FLAG, the Direct VPC
# egress setting; PUBLIC_ACCESS_FLAGS and PRIVATE_ACCESS_FLAGS, a public and an IAM-private URL.
prepare_deploy() {
  parse_flags "$@"
  require_gcloud
  require_project
  warn_about_plain_secrets
  load_relay_settings
  connect_redis
  # Each in an assignment of its own, so that a check failing inside stops the script (set -e
  # does not see a failure inside $(...) used as a command's argument).
  TIMEOUT=$(request_timeout_seconds)
  CONCURRENCY=$(server_setting THREADS)  # = gevent's connections per worker process
  CPU=$(server_setting WORKERS)  # one worker process per vCPU
  read_extra_secrets
  collect_deploy_env
  ENV_VARS="^|^$(IFS='|'; echo "${DEPLOY_ENV[*]}")"
  choose_access
  report_relay_settings
  check_relay_config
  check_requirements_lock
  # After every check, so that a deploy refused by one runs no gcloud command at all.
  pin_secret_versions
  vpc_flags
  # The same on both targets (tests/test_deploy.py checks them on each).
  SHARED_FLAGS=(
    --memory="$MEMORY"
    --cpu="$CPU"
    --concurrency="$CONCURRENCY"
    --min-instances=0
    --max-instances="$MAX_INSTANCES"
    --service-account="$(runtime_account_email)"
    --build-service-account="$(build_account_resource)"
    ${VPC_FLAGS[@]+"${VPC_FLAGS[@]}"}
    --set-env-vars="$ENV_VARS"
    --set-secrets="$SECRETS"
    "${ACCESS_FLAGS[@]}"
    --quiet
  )
  cd "$ROOT_DIR" || exit 1
}

# deploy/relay.env, committed with the code, holds the owner's relay settings, so that every
# deploy (by hand, or from Cloud Build) ships the same ones; a variable set in the shell, or a
# flag, wins.
load_relay_settings() {
  local file="$DEPLOY_DIR/relay.env" name value
  [ -f "$file" ] || return 0
  while IFS='=' read -r name value; do
    case "$name" in '' | '#'*) continue ;; esac
    if ! printf '%s\n' "${RELAY_SETTINGS[@]}" | grep -qx "$name"; then
      die "deploy/relay.env sets $name, which is not one of the relay's settings (docs/configuration.md)."
    fi
    if [ -z "${!name-}" ]; then
      printf -v "$name" '%s' "$value"
      printf -v "FROM_$name" '%s' "deploy/relay.env"
    else
      printf -v "FROM_$name" '%s' "$(setting_source "$name"), over deploy/relay.env's"
    fi
  done <"$file"
}

setting_source() {
  local from="FROM_$1"
  echo "${!from:-this shell}"
}

# A URL's host ("" when there is none).
url_host() {
  if [[ "$1" =~ ^[A-Za-z][A-Za-z0-9+.-]*://([^/@]*@)?(\[[^]/]*\]|[^:/]*) ]]; then
    echo "${BASH_REMATCH[2]}"
  fi
}

# A value as the report shows it: a URL's user and password masked.
shown_value() {
  if [[ "$1" =~ ^([A-Za-z][A-Za-z0-9+.-]*://)[^/@]*@(.*)$ ]]; then
    echo "${BASH_REMATCH[1]}***@${BASH_REMATCH[2]}"
  else
    echo "$1"
  fi
}

# To standard error, before anything is deployed: the relay settings this deploy sets and where
# each came from; warnings about values that leaked from a shell used for local testing; and,
# for a public URL, the limits worth setting.
report_relay_settings() {
  local name value from what any=false secrets
  echo "Relay settings this deploy sets (besides deploy/server.env and GOOGLE_CLOUD_PROJECT):" >&2
  for name in "${RELAY_SETTINGS[@]}"; do
    value=${!name-}
    [ -n "$value" ] || continue
    any=true
    from=$(setting_source "$name")
    echo "  $name=$(shown_value "$value")  (from $from)" >&2
    case "$from" in "this shell"*)
      case "$name" in OPENAI_BASE_URL | ANTHROPIC_BASE_URL | ALLOWED_ORIGINS | UPSTREAMS)
        if [[ "$value" =~ (localhost|127\.0\.0\.1|\[::1\]|0\.0\.0\.0) ]]; then
          what="the deployment would call its own instance, not the server on your machine"
          [ "$name" != ALLOWED_ORIGINS ] || what="the deployment would admit pages served from a developer's machine"
          warn "$name comes from this shell and names this machine (${BASH_REMATCH[1]}), as when testing locally: $what. Run 'unset $name' first, or put it in deploy/relay.env if you mean it."
        fi
        ;;
      esac
      ;;
    esac
  done
  [ "$any" = true ] || echo "  none: the relay's defaults (docs/configuration.md)" >&2
  secrets=$(secret_names | paste -s -d, - | sed 's/,/, /g')
  echo "From Secret Manager: $secrets." >&2
  if [ -n "${REDIS_URL:-}" ]; then
    if [[ "$REDIS_URL" =~ ://[^/@]*@ ]]; then
      warn "REDIS_URL carries a user or password and would be a plain variable, readable by anyone who can view the service: store it in Secret Manager and name it in EXTRA_SECRETS (REDIS_URL=SECRET) instead (docs/deploy.md, 'Redis')."
    fi
    if [ -z "$REDIS_INSTANCE" ] && [ -z "$NETWORK$SUBNET" ] &&
      [[ "$(url_host "$REDIS_URL")" =~ ^(10\.|192\.168\.|172\.(1[6-9]|2[0-9]|3[01])\.) ]]; then
      warn "REDIS_URL is a private address, which the service reaches only through a VPC network: add --network (and --subnet) for Direct VPC egress (docs/deploy.md, 'Redis')."
    fi
  fi
  if [ "$IS_PUBLIC" = true ]; then
    [ -n "${ALLOWED_MODELS:-}" ] ||
      echo "suggestion: the URL is public and ALLOWED_MODELS is unset, so a token can spend the key on any model: --allowed-models 'gpt-4o-mini,gpt-4.1-mini*' (or ALLOWED_MODELS in deploy/relay.env)." >&2
    [ -n "${MAX_TOKENS_LIMIT:-}" ] ||
      echo "suggestion: the URL is public and MAX_TOKENS_LIMIT is unset, so a request may ask for any max_tokens: --max-tokens-limit 4096 (or MAX_TOKENS_LIMIT in deploy/relay.env)." >&2
    [ -n "${ALLOWED_ORIGINS:-}" ] ||
      echo "suggestion: the URL is public and ALLOWED_ORIGINS is unset (*), so any web page can call it: --allowed-origins https://YOUR-PAGE.example, your page's origin (or ALLOWED_ORIGINS in deploy/relay.env)." >&2
  fi
  return 0
}

# What a secret's placeholder is in the configuration check: a value of the secret's form.
secret_placeholder() {
  case "$1" in
    REDIS_URL) echo "redis://secret-manager-placeholder.invalid:6379" ;;
    *) echo "secret-manager-placeholder-value" ;;
  esac
}

# The relay's own start-up check (python3 -m relay.config, standard library only), in a clean
# environment holding exactly the variables the deployment will get, placeholders standing for
# the secrets: a value the relay would refuse stops the deploy here, instead of reaching a
# revision that then fails to start.
check_relay_config() {
  local python=${PYTHON:-python3} name checked=() exported=()
  [ -f "$ROOT_DIR/relay/config/__main__.py" ] ||
    die "$ROOT_DIR/relay/config is missing: the settings are checked with the relay's own check (python3 -m relay.config) before deploying."
  command -v "$python" >/dev/null 2>&1 ||
    die "$python is not on PATH: the settings are checked with the relay's own check (python3 -m relay.config, standard library only) before deploying; install Python 3, or set PYTHON to one."
  checked=("${DEPLOY_ENV[@]}")
  while read -r name; do
    checked+=("$name=$(secret_placeholder "$name")")
  done < <(secret_names)
  # The names exported in this shell, for their spelling only: MAX_TOKEN_LIMIT exported here was
  # meant for the deployment, and would silently not reach it. Their values are not passed.
  mapfile -t exported < <(compgen -e)
  # -B: no bytecode written into relay/ by a check.
  if ! (cd "$ROOT_DIR" && env -i PATH="$PATH" "${checked[@]}" "$python" -B -m relay.config --brief --shell-names "${exported[@]}" >&2); then
    die "the relay would refuse these settings at start-up (above); nothing was deployed."
  fi
}

# The build installs requirements.txt, uploaded with the code (Cloud Run's Python buildpack runs
# pip on it). It is a lock (./dev lock): every package of the tree pinned with the sha256 of its
# files, so pip installs only the files that were locked and tested. A requirement without a hash
# would be resolved afresh by the build, and a lock made from another requirements.in than the one
# here was not made from what was meant (nor, likely, tested): either stops the deploy here.
check_requirements_lock() {
  local python=${PYTHON:-python3} lock="$ROOT_DIR/requirements.txt" source="$ROOT_DIR/requirements.in"
  local requirements unhashed count recorded actual
  local remedy="edit requirements.in (not the lock), run ./dev lock, then ./dev test (docs/deploy.md, 'Update a dependency')"
  if [ ! -f "$lock" ] || [ ! -f "$source" ]; then
    die "requirements.txt or requirements.in is missing: $remedy."
  fi
  # One line per requirement: a lock continues its lines with \ (one --hash each); comments apart.
  requirements=$(awk '
    line == "" && (/^[[:space:]]*#/ || /^[[:space:]]*$/) { next }
    { line = line $0 }
    /\\$/ { sub(/\\$/, "", line); next }
    { print line; line = "" }
  ' "$lock")
  count=$(grep -c . <<<"$requirements" || true)
  unhashed=$(grep -v -e '--hash=sha256:' <<<"$requirements" | grep . || true)
  [ "$count" -gt 0 ] || die "requirements.txt names no package: $remedy."
  [ -z "$unhashed" ] ||
    die "requirements.txt has requirements without --hash ($(head -n 1 <<<"$unhashed" | awk '{print $1}') first), which the build would resolve afresh: $remedy."
  recorded=$(sed -n 's/^# sha256 \([0-9a-f]\{64\}\)  *requirements\.in$/\1/p' "$lock")
  actual=$("$python" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$source")
  [ "$recorded" = "$actual" ] ||
    die "requirements.txt was locked from another requirements.in than the one here (edited since?): $remedy."
  echo "Dependencies: requirements.txt, locked from requirements.in by ./dev lock: $count packages, each pinned with the sha256 of its files; the build installs those files and no others." >&2
}

# --redis / --redis-instance NAME: REDIS_URL from a Memorystore for Redis instance's host and
# port, and its authorized network for Direct VPC egress. (REDIS_URL given directly needs no lookup.)
connect_redis() {
  [ -n "$REDIS_INSTANCE" ] || return 0
  [ -z "${REDIS_URL:-}" ] ||
    die "REDIS_URL is set (from $(setting_source REDIS_URL)) and --redis-instance names a Memorystore instance: give one of them."
  command -v gcloud >/dev/null 2>&1 ||
    die "--redis-instance looks the instance up with gcloud, even with --dry-run: install the Google Cloud CLI, or give REDIS_URL instead."
  local lookup=(gcloud redis instances describe "$REDIS_INSTANCE" --project="$PROJECT" --region="$REGION"
    --format='value(host,port,authorizedNetwork)')
  local found host port network
  [ "$DRY_RUN" = false ] || echo "# looked up (read-only, so run even with --dry-run): $(quoted "${lookup[@]}")"
  found=$("${lookup[@]}") ||
    die "no Memorystore for Redis instance '$REDIS_INSTANCE' in $REGION of $PROJECT (or no right to see it): create it with deploy/setup.sh --redis-instance $REDIS_INSTANCE --region $REGION (docs/deploy.md, 'Redis')."
  read -r host port network <<<"$found"
  [[ -n "$host" && "$port" =~ ^[0-9]+$ ]] ||
    die "Memorystore instance '$REDIS_INSTANCE' has no host and port yet (still being created?): '$found'."
  REDIS_URL="redis://$host:$port"
  FROM_REDIS_URL="--redis-instance $REDIS_INSTANCE"
  if [ -z "$NETWORK" ]; then
    case "$network" in
      "projects/$PROJECT/global/networks/"*) NETWORK=${network##*/} ;;
      ?*) NETWORK=$network ;;
      *) NETWORK=default ;;
    esac
  fi
}

# VPC_FLAGS: Direct VPC egress when a network or subnet is given (or a Memorystore instance's
# network), for traffic to private addresses only; the subnet defaults to the network's name,
# as on the default network, whose subnet in each region is called "default".
vpc_flags() {
  VPC_FLAGS=()
  [ -n "$NETWORK$SUBNET" ] || return 0
  [ -z "$NETWORK" ] || VPC_FLAGS+=(--network="$NETWORK")
  VPC_FLAGS+=(--subnet="${SUBNET:-${NETWORK##*/}}" "$VPC_EGRESS_FLAG=private-ranges-only")
}

warn_about_plain_secrets() {
  local name
  for name in OPENAI_API_KEY ACCESS_TOKENS ANTHROPIC_API_KEY; do
    [ -n "${!name-}" ] || continue
    if [ "$name" = ANTHROPIC_API_KEY ] && [[ ",${EXTRA_SECRETS// /}," != *",$name="* ]]; then
      # Anthropic's key comes from Secret Manager as a route's key does: named in EXTRA_SECRETS.
      warn "$name is set in this shell and is NOT deployed as a plain variable; store it in Secret Manager and name it in EXTRA_SECRETS ($name=relay-anthropic-api-key) (docs/anthropic.md, 'Deploy')."
    else
      warn "$name is set in this shell and is NOT deployed as a plain variable; the deployment reads it from Secret Manager (deploy/setup.sh)."
    fi
  done
}
