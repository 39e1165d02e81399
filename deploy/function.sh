#!/usr/bin/env bash
# Deploy the relay as a Cloud Functions (2nd gen) HTTP function; 1st gen cannot stream.
#
# Usage: deploy/function.sh [options]
#   --project ID          Google Cloud project (default: $PROJECT, else gcloud's configured project)
#   --region REGION       default: $REGION or us-central1
#   --name NAME           the function's name (default: $SERVICE or openai-stream-relay)
#   --key-secret NAME     Secret Manager secret holding OPENAI_API_KEY (default: relay-openai-api-key)
#   --tokens-secret NAME  Secret Manager secret holding ACCESS_TOKENS (default: relay-access-tokens)
#   --no-access-tokens    deploy without access tokens (then the URL is private to IAM unless --public)
#   --public              allow unauthenticated calls even without access tokens (anyone can spend the key)
#   --private             require IAM authentication even with access tokens
#   --runtime-account SA  the service account the function runs as (default: relay-runtime)
#   --memory SIZE         default: 512Mi;  --max-instances N  default: 10
#   --dry-run             print the gcloud commands instead of running them
# The relay's settings (ALLOWED_ORIGINS, ALLOWED_MODELS, OPENAI_BASE_URL, ...; README, "Configuration")
# come from deploy/relay.env, or from the environment, which wins. Keys and tokens come only from
# Secret Manager (EXTRA_SECRETS adds the keys that UPSTREAMS routes name).

set -euo pipefail
# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

prepare_deploy "$@"
run gcloud functions deploy "$SERVICE" \
  --gen2 \
  --project="$PROJECT" \
  --region="$REGION" \
  --runtime="$PYTHON_RUNTIME" \
  --source=. \
  --entry-point=chat \
  --trigger-http \
  --timeout="${TIMEOUT}s" \
  "${SHARED_FLAGS[@]}"
run gcloud functions describe "$SERVICE" --gen2 --project="$PROJECT" --region="$REGION" \
  --format='value(serviceConfig.uri)'
