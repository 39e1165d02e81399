#!/usr/bin/env bash
# Deploy the relay to Cloud Run from source, as a function (gcloud run deploy --source . --function=chat).
#
# Usage: deploy/run.sh [options]
#   --project ID                  Google Cloud project (default: $PROJECT, $CLOUDSDK_CORE_PROJECT,
#                                 $GOOGLE_CLOUD_PROJECT, else gcloud's configured project)
#   --region REGION               default: $REGION or us-central1
#   --name NAME                   the service's name (default: $SERVICE or openai-stream-relay)
#   --key-secret NAME             Secret Manager secret holding OPENAI_API_KEY (default: relay-openai-api-key)
#   --tokens-secret NAME          Secret Manager secret holding ACCESS_TOKENS (default: relay-access-tokens)
#   --no-access-tokens            deploy without access tokens (then the URL is private to IAM unless --public)
#   --public                      allow unauthenticated calls even without access tokens (anyone can spend the key)
#   --private                     require IAM authentication even with access tokens
#   --runtime-account SA          the service account the service runs as (default: relay-runtime)
#   --build-service-account SA    the service account that builds it (default: relay-build; deploy/setup.sh)
#   --memory SIZE                 default: $MEMORY or 2Gi;  --max-instances N  default: $MAX_INSTANCES or 10
#   --allowed-models LIST         ALLOWED_MODELS for this deploy (e.g. 'gpt-4o-mini,gpt-4.1-mini*')
#   --max-tokens-limit N          MAX_TOKENS_LIMIT for this deploy
#   --allowed-origins LIST        ALLOWED_ORIGINS for this deploy (your page's origin)
#   --redis                       REDIS_URL from the Memorystore instance deploy/setup.sh --redis made
#   --redis-instance NAME         the same, from this instance; both add Direct VPC egress to its network
#   --network NAME, --subnet NAME Direct VPC egress (private addresses only) through this network and
#                                 subnet (default subnet: the network's name)
#   --dry-run                     print the gcloud commands instead of running them
# The relay's settings (ALLOWED_ORIGINS, ALLOWED_MODELS, OPENAI_BASE_URL, REDIS_URL, ...;
# docs/configuration.md) come from deploy/relay.env, or from the environment, which wins, or from the
# flags above, which win over both. Before deploying it lists them with where each came from, and
# runs the relay's own check on them (python3 -m relay.config). Keys and tokens come only from
# Secret Manager (EXTRA_SECRETS adds the keys that UPSTREAMS routes name).

set -euo pipefail
# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# gcloud run deploy's name for the Direct VPC egress setting
# (cloud.google.com/run/docs/configuring/vpc-direct-vpc).
VPC_EGRESS_FLAG=--vpc-egress
# A public URL: Cloud Run's invoker IAM check turned off, the way Google recommends, which also
# works where an organisation policy (domain restricted sharing) forbids granting roles to allUsers
# (cloud.google.com/run/docs/authenticating/public). A private one: the check on, and any allUsers
# grant an older deploy made (--allow-unauthenticated) removed, so that neither leaves it public.
PUBLIC_ACCESS_FLAGS=(--no-invoker-iam-check)
PRIVATE_ACCESS_FLAGS=(--invoker-iam-check --no-allow-unauthenticated)
prepare_deploy "$@"
run gcloud run deploy "$SERVICE" \
  --project="$PROJECT" \
  --region="$REGION" \
  --source=. \
  --function=chat \
  --base-image="$PYTHON_RUNTIME" \
  --timeout="$TIMEOUT" \
  "${SHARED_FLAGS[@]}"
run gcloud run services describe "$SERVICE" --project="$PROJECT" --region="$REGION" \
  --format='value(status.url)'
