"""The deployment templates stay consistent with the code: they parse, the fleet entrypoint is a
valid `temporay worker` command, the dashboard queries name metrics the shards export, and the
image's Ray version is the one we pin."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import yaml

from temporay.cluster.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def test_yaml_templates_parse() -> None:
    for path in DEPLOY.rglob("*.yaml"):
        assert yaml.safe_load(path.read_text()), path
    assert yaml.safe_load((DEPLOY / "monitoring" / "prometheus.yml").read_text())["scrape_configs"]


def test_rayjob_entrypoint_is_a_valid_worker_command() -> None:
    job = yaml.safe_load((DEPLOY / "kuberay" / "rayjob-fleet.yaml").read_text())
    argv = shlex.split(job["spec"]["entrypoint"])
    assert argv[0] == "temporay"
    args = build_parser().parse_args(argv[1:])
    assert args.command == "worker" and args.replicas >= 1 and args.ray_address == "auto"


def test_dashboard_queries_exported_metrics() -> None:
    source = (ROOT / "actors" / "metrics.py").read_text()
    exported = set(re.findall(r'"(temporay_shard_[a-z_]+)"', source))
    assert exported
    dashboard = json.loads((DEPLOY / "monitoring" / "grafana-temporay.json").read_text())
    queried = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            queried |= set(re.findall(r"ray_(temporay_shard_[a-z_]+?)(?:_total)?\b", target["expr"]))
    assert queried and queried <= exported, queried - exported


def test_image_uses_the_pinned_ray_version() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    pinned = re.search(r'"ray\[default\]>=(\d+\.\d+)', pyproject)
    assert pinned is not None
    dockerfile = (DEPLOY / "docker" / "Dockerfile").read_text()
    assert f"rayproject/ray:{pinned.group(1)}." in dockerfile
