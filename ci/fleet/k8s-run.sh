#!/usr/bin/env bash
# Runs a vopr fleet on the current kubectl context: the shards (k8s-indexed-job.yaml), then the
# merge (k8s-merge-job.yaml), then copies the results volume to ./fleet-results. Exits as the
# merge did: 0 every seed passed, 1 some seed failed, 2 missing/duplicated seeds or bad input.
#
#   ci/fleet/k8s-run.sh            (edit image, SEEDS and SHARDS in the manifests first)
set -uo pipefail
cd "$(dirname "$0")"

# Waits until Job $1 has finished; prints Complete or Failed (fails if kubectl does).
wait_job() {
  local state=""
  while true; do
    state=$(kubectl get job "$1" -o jsonpath='{.status.conditions[?(@.status=="True")].type}') || return 1
    case " $state " in
      *" Complete "*) echo Complete; return ;;
      *" Failed "*) echo Failed; return ;;
    esac
    sleep 30
  done
}

# A fresh volume each run: shard files of an earlier run would be merged with this one's.
kubectl delete job vopr-fleet vopr-fleet-merge --ignore-not-found >/dev/null
kubectl delete pod vopr-fleet-fetch --ignore-not-found >/dev/null
kubectl delete pvc vopr-fleet-results --ignore-not-found >/dev/null
kubectl apply -f k8s-indexed-job.yaml || exit 2
shards=$(wait_job vopr-fleet) || exit 2
echo "shards: $shards (the merge says which seeds are missing, if any)"
kubectl apply -f k8s-merge-job.yaml || exit 2
merge=$(wait_job vopr-fleet-merge) || exit 2
kubectl logs job/vopr-fleet-merge

# Copy the volume out through a pod that only mounts it.
kubectl run vopr-fleet-fetch --image=busybox --restart=Never --overrides='{
  "spec": {"containers": [{"name": "fetch", "image": "busybox", "command": ["sleep", "3600"],
    "volumeMounts": [{"name": "results", "mountPath": "/results"}]}],
   "volumes": [{"name": "results", "persistentVolumeClaim": {"claimName": "vopr-fleet-results"}}]}}' >/dev/null
kubectl wait --for=condition=Ready pod/vopr-fleet-fetch --timeout=300s >/dev/null
kubectl cp vopr-fleet-fetch:/results ./fleet-results
kubectl delete pod vopr-fleet-fetch --wait=false >/dev/null
echo "results in $(pwd)/fleet-results"

code=$(kubectl get pod -l job-name=vopr-fleet-merge \
  -o jsonpath='{.items[0].status.containerStatuses[0].state.terminated.exitCode}')
[ "$merge" = Complete ] && exit 0
exit "${code:-2}"
