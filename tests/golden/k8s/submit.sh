#!/bin/bash
# Applies the plan's waves as Kubernetes Indexed Jobs, each after the previous one completed.
set -euo pipefail
cd "$(dirname "$0")"
kubectl apply -f wave-0.yaml
kubectl wait --for=condition=complete --timeout=-1s job/texplain-tiny-wave-0
kubectl apply -f wave-1.yaml
kubectl wait --for=condition=complete --timeout=-1s job/texplain-tiny-wave-1
kubectl apply -f wave-2.yaml
kubectl wait --for=condition=complete --timeout=-1s job/texplain-tiny-wave-2
kubectl apply -f wave-3.yaml
kubectl wait --for=condition=complete --timeout=-1s job/texplain-tiny-wave-3
kubectl apply -f wave-4.yaml
kubectl wait --for=condition=complete --timeout=-1s job/texplain-tiny-wave-4
kubectl apply -f wave-5.yaml
kubectl wait --for=condition=complete --timeout=-1s job/texplain-tiny-wave-5
kubectl apply -f wave-6.yaml
kubectl wait --for=condition=complete --timeout=-1s job/texplain-tiny-wave-6
kubectl apply -f wave-7.yaml
kubectl wait --for=condition=complete --timeout=-1s job/texplain-tiny-wave-7
