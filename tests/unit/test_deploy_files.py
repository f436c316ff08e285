"""Cheap checks of deploy/: every deployment's entrypoint loads and its defaults validate."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from seqcast.config import PipelineConfig

REPO = Path(__file__).resolve().parents[2]
PREFECT_FILE = yaml.safe_load((REPO / "deploy" / "prefect.yaml").read_text())


@pytest.mark.parametrize("deployment", PREFECT_FILE["deployments"], ids=lambda d: d["name"])
def test_deployment_entrypoint_loads_and_parameters_validate(
    deployment: dict, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # pyproject's Prefect home (.seqcast/prefect) may not exist in a fresh checkout.
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    from prefect.flows import load_flow_from_entrypoint

    monkeypatch.chdir(REPO)  # entrypoints are relative to the repository root
    flow = load_flow_from_entrypoint(deployment["entrypoint"])
    assert set(flow.parameters.properties) == {"config", "force"}
    assert set(deployment["parameters"]) == {"config"}  # force defaults to False
    PipelineConfig.model_validate(deployment["parameters"]["config"])
    schedule = deployment["schedules"][0]
    assert schedule["cron"] and schedule["timezone"], "a schedule needs an explicit timezone"


def test_default_parameters_are_the_sample_config() -> None:
    """The same pipeline: the file's paths read from configs/, the deployments' (a mapping,
    no file) from the worker's working directory, the repository root."""
    from seqcast.config import load_config
    from seqcast.config_paths import anchor_paths

    sample = load_config(REPO / "configs" / "sample-load.yaml").model_dump()
    for deployment in PREFECT_FILE["deployments"]:
        served = anchor_paths(deployment["parameters"]["config"], REPO)
        assert PipelineConfig.model_validate(served).model_dump() == sample


def test_automations_validate() -> None:
    from prefect.events.schemas.automations import AutomationCore

    document = yaml.safe_load((REPO / "deploy" / "automations.yaml").read_text())
    for automation in document["automations"]:
        for action in automation["actions"]:
            if action["type"] == "send-notification":
                action["block_document_id"] = "00000000-0000-0000-0000-000000000000"
            if str(action.get("deployment_id", "")).startswith("deployment:"):
                # `seqcast alerts` puts the deployment's id there (resolve_deployments)
                action["deployment_id"] = "00000000-0000-0000-0000-000000000001"
        AutomationCore.model_validate(automation)


def test_served_deployments_follow_the_prefect_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`seqcast serve` builds its deployments from deploy/prefect.yaml with the given config,
    under names of their own (not the worker deployments' of `seqcast deploy`)."""
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    monkeypatch.chdir(REPO)
    from flows.cli.serving import runner_deployments

    config = PipelineConfig.model_validate(
        {"name": "served", "source": {"path": "x.csv", "target": ["y"]}}
    )
    served = {d.name: d for d in runner_deployments(Path("deploy/prefect.yaml"), config)}
    assert set(served) == {"nightly-retrain-serve", "batch-predict-serve"}
    retrain = served["nightly-retrain-serve"]
    assert retrain.parameters["config"]["name"] == "served"
    schedule = retrain.schedules[0].schedule
    assert (schedule.cron, schedule.timezone) == ("0 2 * * *", "UTC")
    assert retrain.concurrency_limit == 1
    assert retrain.concurrency_options.collision_strategy == "ENQUEUE"


def test_backfill_dates_cover_the_range_inclusively() -> None:
    from datetime import date

    from flows.cli.scheduling import logical_dates
    from seqcast.errors import ConfigError

    assert logical_dates(date(2026, 2, 27), date(2026, 3, 1)) == [
        date(2026, 2, 27),
        date(2026, 2, 28),
        date(2026, 3, 1),
    ]
    with pytest.raises(ConfigError, match="--to must not be before --from"):
        logical_dates(date(2026, 3, 1), date(2026, 2, 1))


def test_compose_wires_database_auth_ui_and_heartbeats() -> None:
    """Docker cannot run in CI here, so at least the settings that matter are checked."""
    services = yaml.safe_load((REPO / "deploy" / "compose.yaml").read_text())["services"]
    assert {"postgres", "server", "setup", "worker"} <= set(services)
    server = services["server"]["environment"]
    assert server["PREFECT_SERVER_DATABASE_DRIVER"] == "postgresql+asyncpg"
    # The browser must call the published host port, not the container's 0.0.0.0:4200.
    assert server["PREFECT_UI_API_URL"] == "http://localhost:${PREFECT_PORT:-4200}/api"
    assert services["server"]["ports"] == ["${PREFECT_PORT:-4200}:4200"]
    for client in ("setup", "worker"):
        env = services[client]["environment"]
        assert env["PREFECT_API_AUTH_STRING"] == server["PREFECT_SERVER_API_AUTH_STRING"]
        assert "pipeline:/opt/seqcast/.seqcast" in services[client]["volumes"]
    assert int(services["worker"]["environment"]["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"]) >= 30
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text()
    for needed in ("flows", "configs", "schemas", "deploy"):
        assert f"COPY --chown=seqcast {needed} ./{needed}" in dockerfile


def compose_value(text: str, env: dict[str, str]) -> str:
    """``text`` with compose's ``${VAR:-default}`` / ``${VAR:?message}`` filled from ``env``."""
    import re

    def fill(match: re.Match[str]) -> str:
        name, op, rest = match.group(1), match.group(2), match.group(3)
        if env.get(name):
            return env[name]
        assert op == ":-", f"{name} must be set ({rest})"
        return rest

    return re.sub(r"\$\{(\w+)(:-|:\?)([^}]*)\}", fill, text)


def test_server_runs_the_pinned_prefect_image_and_escapes_the_password(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Issue 14 #12: not the TensorFlow image, and a password with URL characters works."""
    from importlib.metadata import version

    from prefect.settings.models.root import Settings
    from sqlalchemy.engine import make_url

    server = yaml.safe_load((REPO / "deploy" / "compose.yaml").read_text())["services"]["server"]
    assert "build" not in server and not server.get("volumes")
    assert server["image"] == f"prefecthq/prefect:{version('prefect')}-python3.11"
    assert f"prefect=={version('prefect')}" in (REPO / "constraints.txt").read_text()

    password = "p@ss/w:rd%#?x"
    env = {"POSTGRES_PASSWORD": password, "PREFECT_AUTH": "admin:secret"}
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    for key, value in server["environment"].items():
        monkeypatch.setenv(key, compose_value(str(value), env))
    url = make_url(Settings().server.database.connection_url.get_secret_value())
    assert (url.drivername, url.host, url.port) == ("postgresql+asyncpg", "postgres", 5432)
    assert (url.username, url.password, url.database) == ("prefect", password, "prefect")


def test_every_long_running_service_has_a_health_check() -> None:
    services = yaml.safe_load((REPO / "deploy" / "compose.yaml").read_text())["services"]
    for name in ("postgres", "server", "worker"):
        assert services[name]["healthcheck"]["test"], name
    worker = services["worker"]
    assert "--with-healthcheck" in worker["command"]
    port = worker["environment"]["PREFECT_WORKER_WEBSERVER_PORT"]
    assert f"localhost:{port}/health" in " ".join(worker["healthcheck"]["test"])
    assert services["setup"]["depends_on"]["server"]["condition"] == "service_healthy"


def dockerignored(path: str, rules: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents wins."""
    import re

    def regex(pattern: str) -> re.Pattern[str]:
        out = re.escape(pattern.strip("/")).replace(r"\*\*/", "(.*/)?")
        return re.compile(out.replace(r"\*", "[^/]*").replace(r"\?", "[^/]") + "$")

    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for rule in rules:
        keep = rule.startswith("!")
        if any(regex(rule.lstrip("!")).match(p) for p in prefixes):
            ignored = not keep
    return ignored


def test_dockerignore_keeps_venv_and_outputs_out_of_the_build_context() -> None:
    """Issue 14 #12: the compose build sent the 2.6 GB .venv; now only what is copied."""
    lines = (REPO / ".dockerignore").read_text().splitlines()
    rules = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    for heavy in (
        ".venv/lib/python3.11/site-packages/tensorflow/x.so",
        ".seqcast/data/sample-load/registry/champion.json",
        "data/sample/load/sensor-1.csv",
        ".git/objects/ab/cdef",
        "tests/unit/test_config.py",
        "src/seqcast/__pycache__/config.cpython-311.pyc",
    ):
        assert dockerignored(heavy, rules), heavy
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text()
    copied = [
        source
        for line in dockerfile.splitlines()
        if line.startswith("COPY") and "--from" not in line
        for source in [w for w in line.split()[1:-1] if not w.startswith("--")]
    ]
    assert {"pyproject.toml", "src", "flows", "configs", "schemas", "deploy"} <= set(copied)
    for source in copied:
        assert not dockerignored(source, rules), source
        assert not dockerignored(f"{source}/inner/file.py", rules), source
    assert not dockerignored("src/seqcast/config.py", rules)


K8S = REPO / "deploy" / "kubernetes"


def rendered_job(job_variables: dict) -> dict:
    """The Job manifest a Kubernetes worker would submit, rendered the way Prefect's
    worker does: the template's defaults (None dropped), then the deployment's values."""
    import json

    from prefect.utilities.templating import apply_values
    from prefect.workers.base import BaseJobConfiguration

    template = json.loads((K8S / "base-job-template.json").read_text())
    values = BaseJobConfiguration._get_base_config_defaults(template["variables"]["properties"])
    values.update(job_variables)
    return apply_values(template["job_configuration"], values)["job_manifest"]


def test_kubernetes_template_declares_every_placeholder() -> None:
    import json

    from prefect.utilities.templating import find_placeholders

    template = json.loads((K8S / "base-job-template.json").read_text())
    used = {p.name for p in find_placeholders(template["job_configuration"])}
    assert used <= set(template["variables"]["properties"])


@pytest.mark.parametrize(
    ("name", "cpu", "memory"), [("nightly-retrain", "4", "8Gi"), ("batch-predict", "2", "4Gi")]
)
def test_kubernetes_deployments_request_their_resources(name: str, cpu: str, memory: str) -> None:
    deployments = yaml.safe_load((K8S / "prefect.yaml").read_text())["deployments"]
    deployment = next(d for d in deployments if d["name"] == name)
    assert deployment["work_pool"]["name"] == "seqcast-k8s"
    assert deployment["entrypoint"] in {d["entrypoint"] for d in PREFECT_FILE["deployments"]}
    PipelineConfig.model_validate(deployment["parameters"]["config"])
    job = rendered_job(deployment["work_pool"]["job_variables"])
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"] == {"cpu": cpu, "memory": memory}
    assert "nvidia.com/gpu" not in container["resources"]["limits"]  # CPU unless asked
    assert container["image"].endswith("seqcast:0.1.0")
    gpu = rendered_job({**deployment["work_pool"]["job_variables"], "gpu_limit": "2"})
    assert (
        gpu["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"]
        == "2"
    )
