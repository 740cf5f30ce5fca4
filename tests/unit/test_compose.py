"""docker-compose.yml cannot be run here (no Docker engine); check its structure instead."""

import base64
import re
from pathlib import Path

import pytest
import tomllib
import typer
import yaml

from hookstream.core.settings import KAFKA_VERSION

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOC = yaml.safe_load(COMPOSE.read_text())
SERVICES = DOC["services"]
WORKERS = {"streams": 9464, "delivery": 9465}  # service -> metrics port


def env(service: str) -> dict[str, str]:
    return {k: str(v) for k, v in SERVICES[service].get("environment", {}).items()}


def depends_on(service: str) -> dict[str, str]:
    deps = SERVICES[service].get("depends_on", {})
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: spec.get("condition", "service_started") for name, spec in deps.items()}


def bind_mounts(service: str) -> list[tuple[str, str]]:
    """(source, target) of each volume whose source is a path, not a named volume."""
    out = []
    for vol in SERVICES[service].get("volumes", []):
        source, target = vol.split(":")[:2]
        if source.startswith((".", "/")):
            out.append((source, target))
    return out


def test_kafka_service_runs_the_pinned_release_in_kraft_mode():
    kafka = SERVICES["kafka"]
    assert kafka["image"] == f"apache/kafka:{KAFKA_VERSION}"
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "CONTROLLER" in env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    # the host-facing listener is the default HOOKSTREAM_KAFKA_BOOTSTRAP
    assert "9092:9092" in kafka["ports"]
    assert "EXTERNAL://localhost:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    # single node: internal topics must not ask for more replicas than exist
    assert int(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == 1
    assert int(env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"]) == 1


def profile(service: str) -> set[str]:
    return set(SERVICES[service].get("profiles", []))


DEFAULT = {name for name in SERVICES if not profile(name)}  # what `docker compose up` starts
CLUSTER = {name for name in SERVICES if "cluster" in profile(name)}
BROKERS = ["kafka-1", "kafka-2", "kafka-3"]
CLUSTER_WORKERS = {"streams-cluster": 9464, "delivery-cluster": 9465}


def test_the_whole_pipeline_is_there():
    assert DEFAULT == {"kafka", "postgres", "topics", "streams", "delivery", "api", "prometheus", "grafana"}
    assert CLUSTER == {*BROKERS, "topics-cluster", *CLUSTER_WORKERS, "api-cluster"}
    assert set(SERVICES) == DEFAULT | CLUSTER


def test_every_named_volume_is_declared():
    declared = set(DOC.get("volumes") or {})
    for name, svc in SERVICES.items():
        for vol in svc.get("volumes", []):
            source = vol.split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name} uses undeclared volume {source}"


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_depends_on_names_services_and_waits_for_the_right_state(service):
    for dep, condition in depends_on(service).items():
        assert dep in SERVICES, f"{service} depends on unknown service {dep}"
        assert condition in {"service_started", "service_healthy", "service_completed_successfully"}
        if condition == "service_healthy":
            assert "healthcheck" in SERVICES[dep], f"{dep} has no healthcheck to wait for"
        if condition == "service_completed_successfully":
            assert SERVICES[dep].get("restart") == "no", f"{dep} must be one-shot to complete"


def test_start_order_has_no_cycle():
    done: set[str] = set()
    while len(done) < len(SERVICES):
        ready = {s for s in SERVICES if s not in done and set(depends_on(s)) <= done}
        assert ready, f"cycle (or unknown dependency) among {set(SERVICES) - done}"
        done |= ready


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_mounted_files_exist_in_the_repository(service):
    for source, _target in bind_mounts(service):
        assert not source.startswith("/"), f"{service} mounts a host path outside the repository: {source}"
        assert (ROOT / source).exists(), f"{service} mounts {source}, which is not in the repository"


def test_host_ports_are_the_documented_ones_and_unique():
    published = {
        name: [int(str(p).split(":")[0]) for p in svc.get("ports", [])] for name, svc in SERVICES.items()
    }
    assert published["kafka"] == [9092]
    assert published["postgres"] == [5432]
    assert published["prometheus"] == [9090]
    assert published["grafana"] == [3000]
    assert published["api"] == [8080]
    assert [published[b] for b in BROKERS] == [[29092], [29093], [29094]]
    assert published["api-cluster"] == [8081]
    every = [port for ports in published.values() for port in ports]
    assert len(every) == len(set(every))


def test_workers_and_topics_job_run_the_hookstream_image_on_the_internal_listener():
    listeners = SERVICES["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    internal = re.search(r"PLAINTEXT://([\w.-]+:\d+)", listeners).group(1)
    for name in ("topics", *WORKERS):
        assert SERVICES[name]["build"] == "."
        assert env(name)["HOOKSTREAM_KAFKA_BOOTSTRAP"] == internal
    assert SERVICES["topics"]["command"] == ["topics", "ensure"]
    for name in WORKERS:
        assert depends_on(name)["topics"] == "service_completed_successfully"


def test_database_url_matches_the_postgres_service_and_is_not_its_superuser():
    pg = SERVICES["postgres"]["environment"]
    url = env("delivery")["HOOKSTREAM_DATABASE_URL"]
    assert url == f"postgresql+psycopg://{pg['HOOKSTREAM_DB_USER']}:{pg['HOOKSTREAM_DB_PASSWORD']}@postgres:5432/{pg['POSTGRES_DB']}"
    # superusers bypass row-level security: the application's role is created by the init script
    assert pg["HOOKSTREAM_DB_USER"] != pg["POSTGRES_USER"]
    assert "./ops/postgres/initdb:/docker-entrypoint-initdb.d:ro" in SERVICES["postgres"]["volumes"]


def _command_exists(args: list[str]) -> bool:
    from hookstream.shell.cli import app

    command = typer.main.get_command(app)
    for name in args:
        if not hasattr(command, "get_command"):
            return False
        command = command.get_command(None, name)
        if command is None:
            return False
    return True


@pytest.mark.parametrize("service", ["topics", *WORKERS, "topics-cluster", *CLUSTER_WORKERS])
def test_service_commands_are_hookstream_commands(service):
    args = SERVICES[service]["command"]
    if args == ["delivery", "worker"] and not _command_exists(["delivery"]):
        pytest.skip("`hookstream delivery worker` is not merged yet (issue 7, delivery worker)")
    assert _command_exists(args), f"hookstream {' '.join(args)} is not a command"


def test_api_serves_on_all_interfaces_after_topics_and_database_with_a_healthcheck():
    api = SERVICES["api"]
    assert api["build"] == "."
    assert api["command"][:1] == ["api"] and api["command"][api["command"].index("--host") + 1] == "0.0.0.0"
    assert _command_exists(["api"])
    port = env("api")["HOOKSTREAM_API_PORT"]
    assert f"{port}:{port}" in api["ports"]
    assert depends_on("api") == {"topics": "service_completed_successfully", "postgres": "service_healthy"}
    assert env("api")["HOOKSTREAM_DATABASE_URL"] == env("delivery")["HOOKSTREAM_DATABASE_URL"]
    check = " ".join(api["healthcheck"]["test"])
    assert f"http://127.0.0.1:{port}/healthz" in check


# ------------------------------------------------------------------ monitoring


def scrape_targets(config: Path) -> dict[str, list[str]]:
    """Job -> its targets as host:port: static ones, and DNS-discovered ones as name:port."""
    doc = yaml.safe_load(config.read_text())
    out = {}
    for job in doc["scrape_configs"]:
        targets = [t for sc in job.get("static_configs", []) for t in sc["targets"]]
        for sd in job.get("dns_sd_configs", []):
            assert sd["type"] == "A", "compose's DNS answers A records (no SRV)"
            targets += [f"{name}:{sd['port']}" for name in sd["names"]]
        out[job["job_name"]] = targets
    return out


def compose_prometheus_config() -> Path:
    prom = SERVICES["prometheus"]
    (config_flag,) = [a for a in prom["command"] if a.startswith("--config.file=")]
    container_path = config_flag.split("=", 1)[1]
    (source, target) = [(s, t) for s, t in bind_mounts("prometheus") if container_path.startswith(t + "/")][0]
    return ROOT / source / container_path.removeprefix(target + "/")


def test_prometheus_scrapes_each_worker_where_it_serves_metrics():
    targets = scrape_targets(compose_prometheus_config())
    assert targets == {f"hookstream-{name}": [f"{name}:{port}"] for name, port in WORKERS.items()}
    for name, port in WORKERS.items():
        assert env(name)["HOOKSTREAM_METRICS_PORT"] == str(port)
        assert env(name)["HOOKSTREAM_METRICS_HOST"] == "0.0.0.0", "loopback is unreachable from another container"
        assert str(port) in SERVICES[name]["expose"]


def test_the_delivery_worker_scales_to_two_replicas_by_default_and_every_replica_is_scraped():
    delivery = SERVICES["delivery"]
    replicas = str(delivery["deploy"]["replicas"])
    # a compose variable with a default of 2 (compose casts it to an int after interpolation)
    (variable, default) = re.fullmatch(r"\$\{(\w+):-(\d+)\}", replicas).groups()
    assert int(default) == 2
    assert not variable.startswith("HOOKSTREAM_"), "a compose variable, not a hookstream setting"
    assert variable in COMPOSE.read_text().split("services:")[0], "documented in the file's header"
    # replicas cannot share a host port or a container name
    assert "ports" not in delivery and "container_name" not in delivery
    # every replica answers the service's DNS name: Prometheus discovers them all, none named
    doc = yaml.safe_load(compose_prometheus_config().read_text())
    for job in doc["scrape_configs"]:
        assert "static_configs" not in job, f"{job['job_name']} names one container; replicas would go unscraped"
        assert [sd["names"] for sd in job["dns_sd_configs"]] == [[job["job_name"].removeprefix("hookstream-")]]


def test_local_prometheus_config_has_the_same_jobs_on_loopback():
    local = scrape_targets(ROOT / "ops" / "prometheus" / "prometheus.yml")
    compose = scrape_targets(ROOT / "ops" / "prometheus" / "prometheus.compose.yml")
    assert set(local) == set(compose)
    for job, targets in compose.items():
        assert local[job] == [f"127.0.0.1:{t.split(':')[1]}" for t in targets]


def test_grafana_gets_its_provisioning_and_dashboards_and_reaches_prometheus():
    mounts = dict((t, s) for s, t in bind_mounts("grafana"))
    assert mounts["/etc/grafana/provisioning"] == "./ops/grafana/provisioning"
    provider = yaml.safe_load((ROOT / "ops/grafana/provisioning/dashboards/hookstream.yml").read_text())["providers"][0]
    assert mounts[provider["options"]["path"]] == "./ops/grafana/dashboards"
    home = SERVICES["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (ROOT / "ops/grafana/dashboards" / home.removeprefix(provider["options"]["path"] + "/")).is_file()
    (source,) = yaml.safe_load((ROOT / "ops/grafana/provisioning/datasources/prometheus.yml").read_text())["datasources"]
    assert source["url"] == "http://prometheus:9090"
    assert "9090:9090" in SERVICES["prometheus"]["ports"]


# ------------------------------------------------------------------ the image


def test_dockerfile_copies_every_package_the_project_installs():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = [p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]]
    copied = set(re.findall(r"^COPY (\S+) \./\1$", text, re.M))
    assert set(packages) <= copied, set(packages) - copied
    for path in copied:
        assert (ROOT / path).exists()
    assert "pip install -c constraints.txt" in text
    assert re.search(r'^ENTRYPOINT \["hookstream"\]$', text, re.M)


HOOKSTREAM_SERVICES = ("topics", "streams", "delivery", "api", "topics-cluster", *CLUSTER_WORKERS, "api-cluster")


@pytest.mark.parametrize("service", HOOKSTREAM_SERVICES)
def test_the_sealing_key_reaches_each_hookstream_service_as_a_compose_secret(service):
    assert "hookstream_secret_key" in SERVICES[service].get("secrets", [])
    assert env(service)["HOOKSTREAM_SECRET_KEY_FILE"] == "/run/secrets/hookstream_secret_key"
    # the key itself never sits in a container's environment (docker inspect shows that)
    assert "HOOKSTREAM_SECRET_KEY" not in env(service)


def test_the_compose_secret_is_declared_from_the_hosts_key_variable():
    declared = DOC.get("secrets") or {}
    assert declared["hookstream_secret_key"] == {"environment": "HOOKSTREAM_SECRET_KEY"}
    for name, svc in SERVICES.items():
        for secret in svc.get("secrets", []):
            assert (secret if isinstance(secret, str) else secret["source"]) in declared, name


# ------------------------------------------------------------------ profile `cluster`


def listener(spec: str, name: str) -> tuple[str, int]:
    """(host, port) of the listener called ``name`` in a KAFKA_*LISTENERS value."""
    (hostport,) = [item.split("://", 1)[1] for item in spec.split(",") if item.startswith(f"{name}://")]
    host, port = hostport.rsplit(":", 1)
    return host, int(port)


def test_the_cluster_profile_runs_three_kraft_nodes_of_the_pinned_release_with_distinct_ids():
    ids = []
    for name in BROKERS:
        broker = SERVICES[name]
        assert broker["image"] == SERVICES["kafka"]["image"] == f"apache/kafka:{KAFKA_VERSION}"
        assert profile(name) == {"cluster"}
        e = broker["environment"]
        assert e["KAFKA_PROCESS_ROLES"] == "broker,controller"
        ids.append(int(e["KAFKA_NODE_ID"]))
        assert broker["hostname"] == name
    assert sorted(ids) == [1, 2, 3]
    # one cluster id (a base64 UUID, as kafka-storage format wants), the same on every node
    (cluster_id,) = {SERVICES[b]["environment"]["CLUSTER_ID"] for b in BROKERS}
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_every_node_lists_the_same_voters_each_at_its_own_controller_listener():
    voters = {SERVICES[b]["environment"]["KAFKA_CONTROLLER_QUORUM_VOTERS"] for b in BROKERS}
    assert len(voters) == 1
    expected = set()
    for name in BROKERS:
        e = SERVICES[name]["environment"]
        _host, port = listener(e["KAFKA_LISTENERS"], "CONTROLLER")
        expected.add(f"{e['KAFKA_NODE_ID']}@{SERVICES[name]['hostname']}:{port}")
    assert set(voters.pop().split(",")) == expected


def test_each_node_advertises_itself_inside_and_its_published_port_outside():
    for name in BROKERS:
        e = SERVICES[name]["environment"]
        assert listener(e["KAFKA_ADVERTISED_LISTENERS"], "PLAINTEXT")[0] == name
        outside = listener(e["KAFKA_ADVERTISED_LISTENERS"], "EXTERNAL")
        assert outside[0] == "localhost" and listener(e["KAFKA_LISTENERS"], "EXTERNAL")[1] == outside[1]
        assert f"{outside[1]}:{outside[1]}" in SERVICES[name]["ports"]


def test_the_cluster_replicates_internal_and_new_topics_and_never_elects_an_unclean_leader():
    for name in BROKERS:
        e = {k: str(v) for k, v in SERVICES[name]["environment"].items()}
        assert e["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == e["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "3"
        assert e["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == e["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        assert e["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3"
        assert e["KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE"] == "false"


def test_each_node_has_a_healthcheck_on_its_own_internal_listener():
    for name in BROKERS:
        check = " ".join(SERVICES[name]["healthcheck"]["test"])
        host, port = listener(SERVICES[name]["environment"]["KAFKA_ADVERTISED_LISTENERS"], "PLAINTEXT")
        assert f"--bootstrap-server {host}:{port}" in check


def test_the_clusters_topics_job_and_workers_list_all_three_brokers():
    internal = sorted(
        "%s:%d" % listener(SERVICES[b]["environment"]["KAFKA_ADVERTISED_LISTENERS"], "PLAINTEXT") for b in BROKERS
    )
    for name in ("topics-cluster", *CLUSTER_WORKERS, "api-cluster"):
        assert profile(name) == {"cluster"}
        assert SERVICES[name]["build"] == "."
        assert sorted(env(name)["HOOKSTREAM_KAFKA_BOOTSTRAP"].split(",")) == internal
    assert SERVICES["topics-cluster"]["command"] == ["topics", "ensure"]
    assert env("topics-cluster")["HOOKSTREAM_REPLICATION_FACTOR"] == "3"
    assert depends_on("topics-cluster") == {b: "service_healthy" for b in BROKERS}
    for name in (*CLUSTER_WORKERS, "api-cluster"):
        assert depends_on(name)["topics-cluster"] == "service_completed_successfully"
    for name, port in CLUSTER_WORKERS.items():
        assert env(name)["HOOKSTREAM_METRICS_PORT"] == str(port) and str(port) in SERVICES[name]["expose"]
    api = SERVICES["api-cluster"]
    assert api["command"] == SERVICES["api"]["command"]
    port = env("api-cluster")["HOOKSTREAM_API_PORT"]
    assert f"{port}:{port}" in api["ports"] and f"http://127.0.0.1:{port}/healthz" in " ".join(api["healthcheck"]["test"])


def test_the_default_stack_never_needs_the_cluster_profile():
    for name in DEFAULT:
        assert set(depends_on(name)) <= DEFAULT, name
        assert "kafka-1" not in env(name).get("HOOKSTREAM_KAFKA_BOOTSTRAP", "")
