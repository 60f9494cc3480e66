#!/usr/bin/env python3
"""Checks the fleet definitions of ci/fleet/ and runs their shell steps on this machine.

    python3 ci/fleet/check.py path/to/vopr

Parses every YAML file here, checks what must agree (shard counts, seed ranges, container
names, job order), then runs the Kubernetes shard and merge scripts and the GitHub Actions shard
and merge steps as written (with a small seed range, /results in a temporary folder and the given
vopr first on PATH), and compares each merged summary with a single run of the same range.
Exit 0 when all is well; otherwise prints what is wrong and exits 1.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SEEDS = "1..13"  # a small range for the local run: 12 seeds
COUNTS = ["seeds_run", "passed", "failed", "correctness", "liveness", "harness_bug",
          "failed_by_invariant", "linearizability", "faults"]
problems = []


def check(ok, what):
    if not ok:
        problems.append(what)


def load(name):
    with open(os.path.join(HERE, name)) as f:
        return list(yaml.safe_load_all(f))


def env_of(container):
    return {e["name"]: e["value"] for e in container.get("env", [])}


def run(script, cwd, env, shell):
    argv = ["/bin/sh", "-c", script] if shell == "sh" else \
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script]
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)


def single_run(vopr, tmp):
    path = os.path.join(tmp, "single.json")
    subprocess.run([vopr, "--seeds", SEEDS, "--json", "--summary", path],
                   capture_output=True, check=False)
    with open(path) as f:
        return json.load(f)


def compare(name, merged_path, single):
    try:
        with open(merged_path) as f:
            merged = json.load(f)
    except (OSError, ValueError) as e:
        check(False, f"{name}: no merged summary ({e})")
        return
    for key in COUNTS:
        check(merged.get(key) == single.get(key),
              f"{name}: merged {key} {merged.get(key)!r} != single run {single.get(key)!r}")


def kubernetes(vopr, tmp, single):
    pvc, job = load("k8s-indexed-job.yaml")
    (merge,) = load("k8s-merge-job.yaml")
    check(pvc["kind"] == "PersistentVolumeClaim", "k8s: the first document is the volume")
    spec = job["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    env = env_of(container)
    check(spec.get("completionMode") == "Indexed", "k8s: completionMode must be Indexed")
    check(spec["completions"] == int(env["SHARDS"]), "k8s: completions != SHARDS")
    check(spec["parallelism"] <= spec["completions"], "k8s: parallelism > completions")
    check(pod["restartPolicy"] == "Never", "k8s: podFailurePolicy needs restartPolicy Never")
    for rule in spec.get("podFailurePolicy", {}).get("rules", []):
        check(rule["onExitCodes"]["containerName"] == container["name"],
              "k8s: podFailurePolicy names another container")
    claim = pvc["metadata"]["name"]
    for p in (pod, merge["spec"]["template"]["spec"]):
        check(p["volumes"][0]["persistentVolumeClaim"]["claimName"] == claim,
              "k8s: a Job mounts another volume")
    (merger,) = merge["spec"]["template"]["spec"]["containers"]
    check(env_of(merger)["SEEDS"] == env["SEEDS"], "k8s: the merge's SEEDS differ")
    check(merger["image"] == container["image"], "k8s: the merge runs another image")
    script = container["args"][0]
    check('--shard "$i/$SHARDS"' in script and "--json" in script, "k8s: shard command")

    results = os.path.join(tmp, "k8s-results")
    os.makedirs(results)
    shards = 3
    base = dict(os.environ, SEEDS=SEEDS, SHARDS=str(shards), JOBS="1")
    for i in range(shards):
        p = run(script.replace("/results", results), tmp,
                dict(base, JOB_COMPLETION_INDEX=str(i)), "sh")
        check(p.returncode == 0, f"k8s shard {i}: exit {p.returncode}: {p.stderr.strip()}")
        check(os.path.exists(os.path.join(results, f"shard-{i}.jsonl")),
              f"k8s shard {i}: no shard-{i}.jsonl")
    p = run(merger["args"][0].replace("/results", results), tmp, base, "sh")
    failed = single["failed"] > 0
    check(p.returncode == (1 if failed else 0), f"k8s merge: exit {p.returncode}: {p.stderr}")
    check(p.stdout.startswith(f"{single['seeds_run']} seeds: "), f"k8s merge: {p.stdout!r}")
    compare("k8s", os.path.join(results, "summary.json"), single)
    check(os.path.exists(os.path.join(results, "failures", "failures.jsonl")),
          "k8s merge: no failures/failures.jsonl")


def github(vopr, tmp, single):
    (workflow,) = load("github-actions.yml")
    jobs = workflow["jobs"]
    shards = int(workflow["env"]["SHARDS"])
    matrix = jobs["shard"]["strategy"]["matrix"]["shard"]
    check(matrix == list(range(shards)), f"github: matrix {matrix} is not 0..{shards}")
    check(jobs["shard"]["strategy"].get("fail-fast") is False, "github: fail-fast must be off")
    check(set(jobs["merge"]["needs"]) >= {"shard"}, "github: merge must need the shards")
    check("always()" in jobs["merge"]["if"], "github: merge must run after a failed shard")
    (shard_step,) = [s for s in jobs["shard"]["steps"] if "run" in s]
    (merge_step,) = [s for s in jobs["merge"]["steps"] if "run" in s]
    check("${{ matrix.shard }}/${{ env.SHARDS }}" in shard_step["name"] and
          '--shard "$i/$SHARDS"' in shard_step["run"], "github: shard command")
    if shutil.which("jq") is None:
        print("ci/fleet: jq (on GitHub's runners) is not here: the GitHub steps were not run")
        return
    work = os.path.join(tmp, "github")
    os.makedirs(os.path.join(work, "shards"))
    os.symlink(os.path.abspath(vopr), os.path.join(work, "vopr"))
    env = dict(os.environ, SEEDS=SEEDS, SHARDS=str(shards),
               GITHUB_STEP_SUMMARY=os.path.join(work, "step-summary.md"))
    for i in matrix:
        p = run(shard_step["run"].replace("${{ matrix.shard }}", str(i)), work, env, "bash")
        check(p.returncode == 0, f"github shard {i}: exit {p.returncode}: {p.stderr.strip()}")
        for name in (f"shard-{i}.jsonl", f"summary-{i}.json", f"failing-{i}.jsonl"):
            if os.path.exists(os.path.join(work, name)):
                os.rename(os.path.join(work, name), os.path.join(work, "shards", name))
            else:
                check(False, f"github shard {i}: no {name} to upload")
    check("${{" not in merge_step["run"], "github: the merge step uses an expression")
    p = run(merge_step["run"], work, env, "bash")
    failed = single["failed"] > 0
    check(p.returncode == (1 if failed else 0), f"github merge: exit {p.returncode}: {p.stdout}")
    compare("github", os.path.join(work, "summary.json"), single)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: check.py path/to/vopr")
    vopr = os.path.abspath(sys.argv[1])
    with tempfile.TemporaryDirectory() as tmp:
        single = single_run(vopr, tmp)
        os.environ["PATH"] = os.path.dirname(vopr) + os.pathsep + os.environ["PATH"]
        kubernetes(vopr, tmp, single)
        github(vopr, tmp, single)
    for p in problems:
        print("ci/fleet:", p)
    sys.exit(1 if problems else 0)


main()
