"""Loading a config directory: YAML positions, models, overrides, durations, digests, and fuzzing."""

from __future__ import annotations

import copy
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from strataflow import yamlsrc
from strataflow.backends.arm import ArmImpl
from strataflow.backends.cloudformation import CloudFormationImpl
from strataflow.backends.command import CommandImpl
from strataflow.backends.terraform import TerraformImpl
from strataflow.config import Platform, parse_duration
from strataflow.errors import ConfigError, UsageError
from strataflow.graph import Graph, component_graph, select_components
from strataflow.load import load_platform
from strataflow.releases import bundle_of, config_digest
from strataflow.resolve import merged_parameters
from tests.support.configs import SAMPLE_COMPONENTS, SAMPLE_ENVIRONMENTS, SAMPLE_FILES, sample_config, write_tree


@pytest.fixture
def platform(tmp_path: Path) -> Platform:
    return load_platform(sample_config(tmp_path))


def _problems(config: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_platform(config)
    return [str(p) for p in caught.value.problems]


class TestYamlSource:
    def test_positions_are_kept(self) -> None:
        """Every mapping remembers its own line and the line and column of each key."""
        data, problems = yamlsrc.loads("a:\n  b: [1, {c: 2}]\n  d:\n    - e: 3\n", "f.yaml")
        assert problems == []
        assert data.positions == {"a": (1, 1)}
        assert data["a"].line == 2
        assert data["a"].positions == {"b": (2, 3), "d": (3, 3)}
        assert data["a"]["b"][1].positions == {"c": (2, 11)}
        assert yamlsrc.position(data, ("a", "d", 0, "e")) == (4, 7)

    def test_position_stops_at_the_deepest_known_key(self) -> None:
        """A path the data does not have resolves to the deepest key it does have."""
        data, _ = yamlsrc.loads("a:\n  b: 1\n", "f.yaml")
        assert yamlsrc.position(data, ("a", "b", "missing", 3)) == (2, 3)
        assert yamlsrc.position(data, ("zzz",)) == (1, None)

    def test_duplicate_keys_are_problems_at_any_depth(self) -> None:
        """Two equal keys in one mapping are reported at the second, naming the first's line."""
        text = "a:\n  x: 1\n  y: 2\n  x: 3\nb: 1\nb: 2\n"
        data, problems = yamlsrc.loads(text, "f.yaml")
        assert data is not None
        assert [(p.line, p.column) for p in problems] == [(4, 3), (6, 1)]
        assert "'x' is defined twice in one mapping (first at line 2)" in problems[0].message
        assert "'b' is defined twice in one mapping (first at line 5)" in problems[1].message

    def test_equal_keys_in_different_mappings_are_fine(self) -> None:
        """The same key in two different mappings is not a duplicate."""
        _, problems = yamlsrc.loads("a: {x: 1}\nb: {x: 2}\n", "f.yaml")
        assert problems == []

    @pytest.mark.parametrize(
        ("text", "where", "words"),
        [
            ('a: [1, "x\n', (2, 1), "quoted scalar at line 1, column 8"),
            ("a:\n\tb: 1\n", (2, 1), "tab character"),
            ("a: {b: 1\n", (2, 1), "while parsing a flow mapping at line 1, column 4"),
            ("a: b: c\n", (1, 5), "mapping values are not allowed here"),
            ("a: !Ref x\n", (1, 4), "unsupported tag '!Ref'"),
            ("a: *x\n", (1, 4), "undefined alias"),
            ('a: "\x07"\n', (1, 5), "character #x0007 is not allowed"),
            ("a: 1\n---\nb: 2\n", (2, 1), "another document"),
        ],
        ids=["unclosed-quote", "tab", "unclosed-flow", "nested-colon", "tag", "alias", "control-char", "two-docs"],
    )
    def test_syntax_errors_give_line_and_column(self, text: str, where: tuple[int, int], words: str) -> None:
        """A YAML error is one problem at file:line:column saying what is wrong."""
        data, problems = yamlsrc.loads(text, "f.yaml")
        assert data is None
        assert len(problems) == 1
        assert (problems[0].line, problems[0].column) == where
        assert words in problems[0].message

    def test_non_utf8_file_is_located(self, tmp_path: Path) -> None:
        """A file that is not UTF-8 is refused at the line and column of its first bad byte."""
        path = tmp_path / "f.yaml"
        path.write_bytes(b"a: 1\nb: caf\xe9\n")
        data, problems = yamlsrc.load(path)
        assert data is None
        assert [(p.line, p.column) for p in problems] == [(2, 7)]
        assert "not UTF-8" in problems[0].message

    def test_unreadable_path(self, tmp_path: Path) -> None:
        """A path that cannot be read (here: a directory) is a problem, not an exception."""
        data, problems = yamlsrc.load(tmp_path)
        assert data is None
        assert "cannot read file" in problems[0].message

    @settings(max_examples=150, deadline=None)
    # no "!": libyaml and PyYAML disagree on an empty scalar with the non-specific tag (`- !`),
    # a YAML corner no config uses
    @given(st.text(alphabet=" \t\n:-[]{},#&*|>'\"%@`?abcx01", max_size=60))
    def test_libyaml_fast_path_agrees_with_pure_python(self, text: str) -> None:
        """The libyaml fast path returns what the pure-Python loader returns, positions included."""
        fast = yamlsrc.loads(text, "f.yaml")
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(yaml, "__with_libyaml__", False)
            slow = yamlsrc.loads(text, "f.yaml")
        assume(slow[0] is not None or fast[0] is None)  # libyaml may accept what PyYAML refuses
        assert fast[1] == slow[1]
        assert fast[0] == slow[0]
        assert _positions(fast[0]) == _positions(slow[0])


def _positions(value: Any) -> Any:
    """Every line and key position inside loaded data, for comparing two loads."""
    if isinstance(value, yamlsrc.LineDict):
        return (value.line, value.positions, {k: _positions(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_positions(v) for v in value]
    return None


class TestComponents:
    def test_per_cloud_implementations(self, platform: Platform) -> None:
        """A component with aws:/azure: sections has one implementation per cloud."""
        network = platform.components["network"]
        assert isinstance(network.impl("aws"), CloudFormationImpl)
        assert isinstance(network.impl("azure"), ArmImpl)
        assert network.any is None
        clusters = platform.components["clusters"]
        assert clusters.impl("azure") is None

    def test_inline_implementation_serves_every_cloud(self, platform: Platform) -> None:
        """A top-level `backend:` is one implementation used on every cloud."""
        identity = platform.components["identity"]
        assert isinstance(identity.any, CommandImpl)
        assert identity.impl("aws") is identity.impl("azure") is identity.any
        smoke = platform.components["smoke-test"]
        assert smoke.depends_on == ["clusters"]
        assert isinstance(smoke.any, CommandImpl)
        assert (smoke.any.timeout, smoke.any.outputs, smoke.any.destroy) == (600, "json", "true")

    def test_terraform_module(self, platform: Platform) -> None:
        """A terraform implementation names a module directory."""
        dns = platform.components["dns"].impl("aws")
        assert isinstance(dns, TerraformImpl)
        assert dns.module == "modules/dns"

    def test_numeric_version_becomes_text(self, platform: Platform) -> None:
        """`version: 2` is kept as the text '2'; a quoted version stays as written."""
        assert platform.components["clusters"].version == "2"
        assert platform.components["network"].version == "1.4.0"

    def test_cloudformation_defaults(self, platform: Platform) -> None:
        """A CloudFormation implementation gets the usual capabilities by default."""
        impl = platform.components["network"].impl("aws")
        assert isinstance(impl, CloudFormationImpl)
        assert "CAPABILITY_NAMED_IAM" in impl.capabilities
        assert impl.stack_name is None

    def test_inline_and_cloud_sections_together_are_refused(self, tmp_path: Path) -> None:
        """A component cannot have both a top-level backend and an aws: section."""
        text = SAMPLE_COMPONENTS + '  both:\n    backend: command\n    apply: "true"\n    aws: {backend: command}\n'
        problems = _problems(sample_config(tmp_path, {"components.yaml": text}))
        assert any("'aws:' in components.both next to a top-level 'backend:'" in p for p in problems)

    def test_name_key_cannot_rename_a_component(self, tmp_path: Path) -> None:
        """A `name:` inside a component is refused instead of silently renaming it."""
        text = SAMPLE_COMPONENTS.replace("  dns:\n", "  dns:\n    name: other\n")
        problems = _problems(sample_config(tmp_path, {"components.yaml": text}))
        assert problems == [
            f"{tmp_path}/components.yaml:25:5: unknown key 'name' in components.dns; a component is named by its key"
        ]

    def test_invalid_component_is_not_also_unknown(self, tmp_path: Path) -> None:
        """A component that fails to load is not reported again as unknown by its dependents or overrides."""
        text = SAMPLE_COMPONENTS.replace("timeout: 600", "timeout: -1").replace("version: 2", "version: [2]")
        problems = _problems(sample_config(tmp_path, {"components.yaml": text}))
        assert len(problems) == 2, problems
        assert not any("unknown" in p for p in problems)


class TestEnvironments:
    def test_environment_fields(self, platform: Platform) -> None:
        """Clouds, promote_from, approval and variables are read from environments/<name>.yaml."""
        prod = platform.environment("prod")
        assert prod.declared_clouds() == ["aws"]
        assert prod.promote_from == "dev"
        assert prod.approval.required is True
        assert prod.approval.names == ["alice", "bob"]
        assert prod.approval.timeout == 86400.0
        assert prod.variables == {"vpc_cidr": "10.1.0.0/16"}
        assert platform.environment("dev").clouds.aws is not None
        assert platform.environment("dev").clouds.aws.account_id == "111111111111"

    def test_empty_environment_is_valid(self, tmp_path: Path) -> None:
        """`{}` and an empty file are both valid environments with defaults."""
        config = sample_config(tmp_path, {"environments/qa.yaml": "{}\n", "environments/perf.yaml": ""})
        files = {"environments/dev.yaml": SAMPLE_ENVIRONMENTS["dev"]}
        write_tree(config, files)
        text = SAMPLE_COMPONENTS.replace('"${var.vpc_cidr}"', "10.9.0.0/16")
        platform = load_platform(write_tree(config, {"components.yaml": text}))
        qa = platform.environment("qa")
        assert qa.declared_clouds() == []
        assert qa.approval.required is False
        assert qa.approval.timeout == 86400.0
        assert platform.environment("perf").components == {}

    def test_overrides_merge_over_parameters(self, platform: Platform) -> None:
        """An environment's override parameters are laid over the implementation's."""
        dev, prod = platform.environment("dev"), platform.environment("prod")
        assert merged_parameters(platform, dev, "clusters", "aws") == {
            "SubnetIds": "${network.outputs.PrivateSubnetIds}",
            "NodeCount": 3,
        }
        assert merged_parameters(platform, prod, "clusters", "aws")["NodeCount"] == 1
        assert dev.override("clusters").timeout == 900
        assert dev.override("network").enabled is True

    def test_disabled_component_leaves_the_graph(self, platform: Platform) -> None:
        """`enabled: false` drops the component from that environment's graph only."""
        prod_graph = component_graph(platform, platform.environment("prod"), "aws")
        dev_graph = component_graph(platform, platform.environment("dev"), "aws")
        assert "dns" not in prod_graph.upstream
        assert "dns" in dev_graph.upstream
        with pytest.raises(UsageError, match="disabled in prod"):
            select_components(platform, "prod", "aws", "dns")

    def test_component_without_implementation_for_the_cloud_is_left_out(self, platform: Platform) -> None:
        """On azure only components implemented there (or for any cloud) are in the graph."""
        graph = component_graph(platform, platform.environment("dev"), "azure")
        assert set(graph.upstream) == {"network", "identity", "smoke-test"}
        assert graph.upstream["smoke-test"] == frozenset()

    def test_unknown_environment(self, platform: Platform) -> None:
        """Asking for an unknown environment names the known ones and suggests the closest."""
        known = r"unknown environment 'prd' \(did you mean 'prod'\?\) \(known: dev, prod\)"
        with pytest.raises(ConfigError, match=known):
            platform.environment("prd")

    def test_cycle_closed_by_an_override_is_reported_in_that_environment(self, tmp_path: Path) -> None:
        """An override whose output reference closes a cycle is reported in its environment file."""
        env = SAMPLE_ENVIRONMENTS["prod"] + "  network: {parameters: {VpcCidr: '${smoke-test.outputs.Url}'}}\n"
        problems = _problems(sample_config(tmp_path, {"environments/prod.yaml": env}))
        assert len(problems) == 1
        where = f"{tmp_path}/environments/prod.yaml:11:3: "
        assert problems[0].startswith(where + "dependency cycle in environment 'prod': ")
        path = problems[0].split(": ")[2].split(";")[0].split(" -> ")
        assert path[0] == path[-1]
        assert sorted(path[:-1]) == ["clusters", "network", "smoke-test"]
        start = path.index("network")
        assert (path[:-1] * 2)[start : start + 3] == ["network", "clusters", "smoke-test"]

    def test_edges_from_different_environments_do_not_make_a_cycle(self, tmp_path: Path) -> None:
        """Overrides in two environments that would form a cycle only together are valid."""
        dev = SAMPLE_ENVIRONMENTS["dev"] + "  identity: {parameters: {dns: '${dns.outputs.zone}'}}\n"
        prod = SAMPLE_ENVIRONMENTS["prod"].replace(
            "dns: {enabled: false}", "dns: {parameters: {zone: '${identity.outputs.id}'}}"
        )
        config = sample_config(tmp_path, {"environments/dev.yaml": dev, "environments/prod.yaml": prod})
        platform = load_platform(config)
        assert component_graph(platform, platform.environment("dev"), "aws").upstream["identity"] == {"dns"}
        assert component_graph(platform, platform.environment("prod"), "aws").upstream["dns"] == {"identity"}

    def test_yml_extension_is_refused(self, tmp_path: Path) -> None:
        """An environment file ending in .yml is reported instead of being named as a .yaml file that does not exist."""
        problems = _problems(sample_config(tmp_path, {"environments/qa.yml": "{}\n"}))
        assert problems == [f"{tmp_path}/environments/qa.yml: environment files end in .yaml; rename it to qa.yaml"]


class TestDurations:
    @pytest.mark.parametrize(
        ("value", "seconds"),
        [("30m", 1800.0), ("24h", 86400.0), ("2d", 172800.0), ("90s", 90.0), ("90", 90.0), (90, 90.0),
         (1.5, 1.5), ("1.5h", 5400.0), (" 30 m ", 1800.0), (0, 0.0)],
    )
    def test_valid_durations(self, value: object, seconds: float) -> None:
        """Numbers are seconds; text takes an s/m/h/d unit."""
        assert parse_duration(value) == seconds

    @pytest.mark.parametrize(
        "value", ["24x", "", "h", "-5", "1e3", "30 minutes", True, None, -1, float("inf"), float("nan")]
    )
    def test_invalid_durations(self, value: object) -> None:
        """Anything else is refused with an example of what to write."""
        with pytest.raises(ValueError, match="is not a duration"):
            parse_duration(value)

    def test_approval_and_freeze_durations(self, tmp_path: Path) -> None:
        """`approval.timeout` and a freeze window's `duration` take durations."""
        env = SAMPLE_ENVIRONMENTS["prod"].replace("timeout: 24h", "timeout: 30m") + textwrap.dedent(
            """\
            freeze:
              - {reason: weekend, cron: "0 18 * * 5", duration: 2d}
            """
        )
        prod = load_platform(sample_config(tmp_path, {"environments/prod.yaml": env})).environment("prod")
        assert prod.approval.timeout == 1800.0
        assert prod.freeze[0].duration == 172800.0


class TestDigest:
    @pytest.fixture
    def config(self, tmp_path: Path) -> Path:
        return sample_config(tmp_path)

    def _digest(self, config: Path, component: str = "network", parameters: dict[str, Any] | None = None) -> str:
        platform = load_platform(config)
        bundle = bundle_of(platform, component, "aws").manifest.digest
        return config_digest(bundle, parameters or {"VpcCidr": "10.0.0.0/16"})

    def _bundle(self, config: Path, component: str) -> str:
        return bundle_of(load_platform(config), component, "aws").manifest.digest

    def test_changes_with_template_content(self, config: Path) -> None:
        """Editing the deployed template changes the digest."""
        before = self._digest(config)
        (config / "templates/aws/network.yaml").write_text(SAMPLE_FILES["templates/aws/network.yaml"] + "# edited\n")
        assert self._digest(config) != before

    def test_changes_with_parameters(self, config: Path) -> None:
        """Different resolved parameters give a different digest; their order does not matter."""
        base = self._digest(config, parameters={"A": 1, "B": 2})
        assert self._digest(config, parameters={"B": 2, "A": 1}) == base
        assert self._digest(config, parameters={"A": 1, "B": 3}) != base

    def test_changes_with_version(self, config: Path) -> None:
        """A new version changes the digest."""
        before = self._digest(config)
        text = SAMPLE_COMPONENTS.replace('version: "1.4.0"', 'version: "1.5.0"')
        write_tree(config, {"components.yaml": text})
        assert self._digest(config) != before

    def test_changes_with_implementation_settings(self, config: Path) -> None:
        """A setting of the implementation itself (the stack name) changes the digest."""
        before = self._digest(config)
        text = SAMPLE_COMPONENTS.replace(
            "template: templates/aws/network.yaml", "template: templates/aws/network.yaml\n      stack_name: vpc"
        )
        write_tree(config, {"components.yaml": text})
        assert self._digest(config) != before

    def test_stable_under_unrelated_changes(self, config: Path) -> None:
        """Another component's template, the description, an environment and stray files do not matter."""
        before = self._digest(config)
        text = SAMPLE_COMPONENTS.replace("VPC, subnets and routing", "the network")
        write_tree(
            config,
            {
                "components.yaml": text,
                "templates/aws/clusters.yaml": SAMPLE_FILES["templates/aws/clusters.yaml"] + "# edited\n",
                "templates/aws/notes.txt": "unrelated\n",
                "environments/dev.yaml": SAMPLE_ENVIRONMENTS["dev"].replace("NodeCount: 3", "NodeCount: 5"),
            },
        )
        assert self._digest(config) == before

    def test_module_digest_ignores_terraform_state(self, config: Path) -> None:
        """A module's digest covers its files and its lock file, but not state or .terraform/."""
        before = self._bundle(config, "dns")
        write_tree(
            config,
            {
                "modules/dns/terraform.tfstate": "{}",
                "modules/dns/terraform.tfstate.backup": "{}",
                "modules/dns/.terraform/providers/x": "binary",
            },
        )
        assert self._bundle(config, "dns") == before
        write_tree(config, {"modules/dns/.terraform.lock.hcl": "lock"})
        assert self._bundle(config, "dns") != before, "the provider lock file is part of the module"
        before = self._bundle(config, "dns")
        write_tree(config, {"modules/dns/variables.tf": 'variable "ttl" {\n  default = 300\n}\n'})
        assert self._bundle(config, "dns") != before

    def test_command_digest_follows_the_command(self, config: Path) -> None:
        """For a command component the command text is what the digest follows."""
        before = self._bundle(config, "identity")
        write_tree(config, {"components.yaml": SAMPLE_COMPONENTS.replace('apply: "echo identity"', 'apply: "echo identity v2"')})
        assert self._bundle(config, "identity") != before


# --- fuzzing ------------------------------------------------------------------------------------------

KNOWN_WORDS = sorted(
    {
        "components", "depends_on", "description", "version", "aws", "azure", "backend", "template", "module",
        "parameters", "apply", "plan", "destroy", "outputs", "timeout", "stack_name", "capabilities", "tags",
        "clouds", "region", "account_id", "promote_from", "approval", "required", "approvers", "variables",
        "enabled", "freeze", "reason", "duration", "terraform", "binary", "name", "network", "clusters",
        "identity", "dns", "smoke-test", "cloudformation", "arm", "command", "json", "dev", "prod",
    }
)
REFERENCES = st.one_of(
    st.sampled_from(
        [
            "${var.vpc_cidr}", "${var.missing}", "${env.name}", "${env.cloud}", "${env.region}", "${secret.token}",
            "${network.outputs.VpcId}", "${smoke-test.outputs.Url}", "${ghost.outputs.X}", "${foo}", "${var.}",
            "${}", "${", "$${var.vpc_cidr}", "${a\nb}", "x ${clusters.outputs.Endpoint} y",
        ]
    ),
    st.text(max_size=12).map(lambda body: "${" + body + "}"),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=15),
    st.sampled_from(KNOWN_WORDS),
    st.sampled_from(["templates/aws/network.yaml", "modules/dns", "../escape", "/etc/hostname", "24h", "24x"]),
    REFERENCES,
)
KEYS = st.one_of(st.sampled_from(KNOWN_WORDS), st.text(max_size=8), st.integers(-3, 3))
TREES = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=5)),
    max_leaves=20,
)
ENV_NAMES = st.sampled_from(["dev", "prod", "qa", "Bad_Name", "x" * 70])


def _check_load(files: dict[str, str | bytes]) -> None:
    """Load ``files`` as a config directory: a Platform, or a ConfigError of one-line problems."""
    with tempfile.TemporaryDirectory() as tmp:
        root = write_tree(Path(tmp), files)
        try:
            platform = load_platform(root)
        except ConfigError as exc:
            event("refused")
            assert exc.problems
            assert exc.exit_code == 2
            for problem in exc.problems:
                text = str(problem)
                assert text.splitlines() == [text], text
                assert text.startswith(str(root)), text
        else:
            event("loaded")
            assert isinstance(platform, Platform)
            assert platform.environments
            for env in platform.environments.values():  # a valid platform always has a graph
                for cloud in env.declared_clouds() or ["aws", "azure"]:
                    component_graph(platform, env, cloud).order()


def _dump(value: Any) -> str:
    return yaml.safe_dump(value, allow_unicode=True, sort_keys=False)


Loc = tuple[Any, ...]


def _paths(value: Any, path: Loc = ()) -> list[Loc]:
    """Every path into a nested value (the empty path is the root)."""
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*path, index))
    return found


def _mutate(value: Any, path: Loc, action: str, replacement: Any) -> Any:
    """``value`` with the node at ``path`` deleted, renamed, replaced or turned into a reference."""
    if not path:
        return replacement if action in ("replace", "reference") else value
    parent = value
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if action == "delete":
        del parent[last]
    elif action == "rename" and isinstance(parent, dict):
        item = parent.pop(last)
        parent[str(replacement)] = item
    elif action == "reference":
        parent[last] = replacement if isinstance(replacement, str) else "${var.vpc_cidr}"
    else:
        parent[last] = replacement
    return value


SAMPLE_DATA = {
    "components.yaml": yaml.safe_load(SAMPLE_COMPONENTS),
    **{f"environments/{name}.yaml": yaml.safe_load(text) for name, text in SAMPLE_ENVIRONMENTS.items()},
}


class TestFuzzLoader:
    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(components=TREES, environments=st.dictionaries(ENV_NAMES, TREES, max_size=3))
    def test_arbitrary_yaml_trees(self, components: Any, environments: dict[str, Any]) -> None:
        """Any YAML tree as components.yaml and environment files loads or fails as a ConfigError."""
        files: dict[str, str | bytes] = {"components.yaml": _dump(components), **SAMPLE_FILES}
        files.update({f"environments/{name}.yaml": _dump(tree) for name, tree in environments.items()})
        _check_load(files)

    @settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.data())
    def test_mutated_valid_configs(self, data: st.DataObject) -> None:
        """A valid config with keys deleted or renamed, types swapped, references injected never crashes the loader."""
        documents = copy.deepcopy(SAMPLE_DATA)
        for _ in range(data.draw(st.integers(1, 4), label="mutations")):
            file = data.draw(st.sampled_from(sorted(documents)), label="file")
            path = data.draw(st.sampled_from(_paths(documents[file])), label="path")
            action = data.draw(st.sampled_from(["delete", "rename", "replace", "reference"]), label="action")
            replacement = data.draw(
                {"rename": KEYS, "reference": REFERENCES}.get(action, TREES), label="replacement"
            )
            documents[file] = _mutate(documents[file], path, action, replacement)
        files: dict[str, str | bytes] = {name: _dump(doc) for name, doc in documents.items()}
        _check_load({**SAMPLE_FILES, **files})

    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        components=st.text(alphabet=" \t\n:-[]{},#&*!|>'\"%@`?$abcnetwork01", max_size=80),
        environment=st.one_of(st.binary(max_size=30), st.text(max_size=30)),
    )
    def test_arbitrary_text(self, components: str, environment: str | bytes) -> None:
        """Arbitrary text or bytes in the files is refused as a ConfigError, never an exception."""
        _check_load({"components.yaml": components, "environments/dev.yaml": environment})


class TestFuzzYamlSource:
    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(TREES, st.sampled_from([{}, {"default_flow_style": True}, {"default_style": '"'}]))
    def test_fast_path_agrees_on_valid_yaml(self, tree: Any, style: dict[str, Any]) -> None:
        """On any valid YAML document the libyaml fast path and the pure-Python loader agree exactly."""
        text = yaml.safe_dump(tree, allow_unicode=True, **style)
        fast = yamlsrc.loads(text, "f.yaml")
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(yaml, "__with_libyaml__", False)
            slow = yamlsrc.loads(text, "f.yaml")
        assert fast[1] == slow[1]
        assert _positions(fast[0]) == _positions(slow[0])
        assert repr(fast[0]) == repr(slow[0])  # repr: NaN != NaN


SELECT_NAMES = ["a", "b", "c-d", "e1", "f"]
SELECT_GRAPH = Graph.of({"a": [], "b": ["a"], "c-d": ["a"], "e1": ["b", "c-d"], "f": []})


class TestFuzzSelect:
    @settings(max_examples=300, deadline=None)
    @given(
        st.one_of(
            st.lists(
                st.sampled_from([*SELECT_NAMES, "", "+", "++", " ", "x", "a+b", "+a+", "e1+", "+c-d"]), max_size=5
            ).map(",".join),
            st.text(alphabet="abcdef1-+, ", max_size=15),
        )
    )
    def test_select_returns_names_or_usage_error(self, spec: str) -> None:
        """Any --select spec gives a set of known components or a UsageError, nothing else."""
        try:
            chosen = SELECT_GRAPH.select(spec)
        except UsageError as exc:
            assert exc.exit_code == 2
            assert "\n" not in str(exc)
        else:
            assert chosen <= set(SELECT_NAMES)
            named = {item.strip().strip("+") for item in spec.split(",")} - {""}
            assert named <= chosen
            if not named:
                assert chosen == set(SELECT_NAMES)


class TestFuzzSeeds:
    def test_seeds_are_the_valid_sample(self) -> None:
        """The mutation seeds hold every file of the valid sample and load as it is."""
        assert set(SAMPLE_DATA) == {"components.yaml", "environments/dev.yaml", "environments/prod.yaml"}
        with tempfile.TemporaryDirectory() as tmp:
            root = write_tree(Path(tmp), {**SAMPLE_FILES, **{name: _dump(doc) for name, doc in SAMPLE_DATA.items()}})
            assert set(load_platform(root).components) == {"network", "identity", "clusters", "dns", "smoke-test"}
