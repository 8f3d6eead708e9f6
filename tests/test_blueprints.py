"""Blueprints and `strata env new` / `strata env list`, as a user runs them (subprocess), plus the pure allocator.

Every test works on a copy of the sample project (config/ and prefect.yaml) in a temporary
directory, so the repository's files are never touched.
"""

from __future__ import annotations

import ipaddress
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from strataflow import cidrs, copyenv, newenv
from strataflow.load import load_platform
from tests.support.cli import strata
from tests.support.configs import sample_project, unique

ACCOUNT = "444444444444"




def new(root: Path, *args: str) -> Any:
    return strata("env", "new", *args, "--config", str(root / "config"), timeout=120)


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def env_data(root: Path, name: str) -> dict[str, Any]:
    data = yaml.safe_load((root / "config" / "environments" / f"{name}.yaml").read_text())
    assert isinstance(data, dict)
    return data


def networks(root: Path) -> dict[str, list[cidrs.Network]]:
    """Every environment's networks, as `strata env new` sees them."""
    return {
        path.stem: [n for v in (yaml.safe_load(path.read_text()) or {}).get("variables", {}).values() for n in cidrs.networks_in(v)]
        for path in sorted((root / "config" / "environments").glob("*.yaml"))
    }


def assert_no_overlap(root: Path) -> None:
    found = networks(root)
    for name, nets in found.items():
        for other, theirs in found.items():
            if other != name:
                clashes = [(a, b) for a in nets for b in theirs if a.overlaps(b)]
                assert not clashes, f"{name} and {other} overlap: {clashes}"


def refused(run: Any, *words: str) -> None:
    """Exit 2, one `error:` line holding ``words``, no traceback."""
    assert run.returncode == 2, f"exit {run.returncode}\n{run.stdout}\n{run.stderr}"
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
    for word in words:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return sample_project(tmp_path)


REFUSALS = {
    "missing-required-value": (("qa", "--blueprint", "aws-account"), ("aws-account.yaml:", "needs clouds.aws.account_id", "--set clouds.aws.account_id=")),
    "overlapping-cidr-by-hand": (("qa", "--from", "staging", "--set", "variables.vpc_cidr=10.20.128.0/17"), ("--set variables.vpc_cidr=10.20.128.0/17 overlaps staging's",)),
    "overlapping-cidr-by-hand-on-a-blueprint": (("qa", "--blueprint", "aws-account", "--set", f"clouds.aws.account_id={ACCOUNT}", "--set", "variables.vpc_cidr=10.10.0.0/16"), ("overlaps dev's 10.10.0.0/16",)),
    "name-taken": (("staging", "--from", "dev"), ("environment 'staging' already exists",)),
    "invalid-name": (("Qa", "--from", "dev"), ("not a valid environment name",)),
    "chain-loops-on-itself": (("qa", "--from", "staging", "--promote-from", "qa"), ("promotion chain loop", "qa -> qa")),
    "unknown-promote-from": (("qa", "--from", "staging", "--promote-from", "stagin"), ("unknown environment 'stagin'", "did you mean 'staging'")),
    "unknown-set-key": (("qa", "--from", "staging", "--set", "clouds.aws.acount_id=1"), ("unknown key 'acount_id'", "did you mean 'account_id'")),
    "set-value-of-the-wrong-type": (("qa", "--from", "staging", "--set", "approval.required=maybe"), ("--set approval.required=maybe", "boolean")),
    "unknown-blueprint": (("qa", "--blueprint", "aws-acount"), ("unknown blueprint 'aws-acount'", "did you mean 'aws-account'")),
    "unknown-source": (("qa", "--from", "stagin"), ("unknown environment 'stagin'",)),
    "subnets-do-not-fit-a-block-given-by-hand": (("qa", "--blueprint", "aws-account", "--set", f"clouds.aws.account_id={ACCOUNT}", "--set", "variables.vpc_cidr=10.99.0.0/24"), ("does not fit in 10.99.0.0/24",)),
}


class TestRefusals:
    @pytest.mark.parametrize("case", list(REFUSALS), ids=list(REFUSALS))
    def test_each_refusal_is_one_line_exit_2_and_writes_nothing(self, case: str, root: Path) -> None:
        """A refused `strata env new` exits 2 with one `error:` line saying what is wrong, and changes no file."""
        args, words = REFUSALS[case]
        before = files(root)
        refused(new(root, *args), *words)
        assert files(root) == before

    def test_a_pool_with_no_free_block_left_is_refused(self, root: Path) -> None:
        """A blueprint's pool fits two /24s; the third environment is refused with the blueprint's line, nothing written."""
        text = (root / "config" / "blueprints" / "aws-account.yaml").read_text()
        text = text.replace("${allocate /16 from 10.0.0.0/8}", "${allocate /24 from 10.200.0.0/23}")
        text = text.replace("${subnets /20 0 1 of", "${subnets /26 0 1 of").replace("${subnets /20 8 9 of", "${subnets /26 2 3 of")
        (root / "config" / "blueprints" / "tiny.yaml").write_text(text)
        for name in ("a1", "a2"):
            assert new(root, name, "--blueprint", "tiny", "--set", f"clouds.aws.account_id={ACCOUNT}").returncode == 0
        before = files(root)
        refused(new(root, "a3", "--blueprint", "tiny", "--set", f"clouds.aws.account_id={ACCOUNT}"), "tiny.yaml:", "no free /24 left", "10.200.0.0/23")
        assert files(root) == before

    def test_an_existing_promotion_loop_is_refused(self, root: Path) -> None:
        """A new environment joining a chain that loops through several environments is refused."""
        dev = root / "config" / "environments" / "dev.yaml"
        dev.write_text(dev.read_text() + "promote_from: prod\n")
        before = files(root)
        refused(new(root, "qa", "--from", "staging", "--promote-from", "dev"), "promotion chain loop")
        assert files(root) == before


class TestFromBlueprint:
    def test_holes_are_filled_allocated_and_derived(self, root: Path) -> None:
        """A blueprint's required value, allocated CIDR, derived subnets and names land in a valid file with a header."""
        run = new(root, "qa", "--blueprint", "aws-account", "--set", f"clouds.aws.account_id={ACCOUNT}")
        assert run.returncode == 0, run.stderr
        text = (root / "config" / "environments" / "qa.yaml").read_text()
        assert text.startswith("# qa: made by `strata env new qa --blueprint aws-account`")
        data = yaml.safe_load(text)
        assert data["clouds"]["aws"] == {"region": "us-east-1", "account_id": ACCOUNT, "role_arn": f"arn:aws:iam::{ACCOUNT}:role/strata-deploy"}
        vpc = ipaddress.ip_network(data["variables"]["vpc_cidr"])
        assert vpc.prefixlen == 16 and vpc.subnet_of(ipaddress.ip_network("10.0.0.0/8"))
        public = [ipaddress.ip_network(n) for n in data["variables"]["public_subnets"].split(",")]
        assert public == list(vpc.subnets(new_prefix=20))[:2]
        assert data["variables"]["dns_zone"] == "qa.platform.example.com" and data["promote_from"] == "dev"
        assert "allocated" in run.stdout and "chain: dev -> qa" in run.stdout
        assert_no_overlap(root)
        assert strata("validate", "--config", str(root / "config")).returncode == 0

    def test_twenty_environments_from_one_pool_never_overlap(self, root: Path) -> None:
        """Twenty environments made one after another from a pool blueprint get twenty disjoint networks and stay valid."""
        for index in range(20):
            run = new(root, f"env{index:02d}", "--blueprint", "aws-account", "--set", f"clouds.aws.account_id={400000000000 + index}")
            assert run.returncode == 0, run.stderr
        assert len(networks(root)) == 23
        assert_no_overlap(root)
        assert strata("validate", "--config", str(root / "config")).returncode == 0
        assert strata("deployments", "--check", "--config", str(root / "config")).returncode == 0

    def test_set_values_are_yaml_typed_but_text_fields_stay_text(self, root: Path) -> None:
        """`--set` parses YAML (numbers, lists, booleans) except where the model wants text, so an account keeps its zeros."""
        run = new(
            root, "qa", "--blueprint", "eu-region", "--set", "clouds.aws.account_id=012345670123",
            "--set", "clouds.azure.subscription_id=00000000-0000-4000-8000-000000000009",
            "--set", "approval.approvers=[alice, carol]", "--set", "variables.node_count=7",
        )
        assert run.returncode == 0, run.stderr
        data = env_data(root, "qa")
        assert data["clouds"]["aws"]["account_id"] == "012345670123"
        assert data["approval"]["approvers"] == ["alice", "carol"] and data["variables"]["node_count"] == 7
        assert data["clouds"]["azure"]["resource_group"] == "strata-qa" and data["promote_from"] == "staging"

    def test_promote_from_overrides_the_blueprint(self, root: Path) -> None:
        """`--promote-from` puts the new environment where it says, not where the blueprint would."""
        run = new(root, "qa", "--blueprint", "aws-account", "--set", f"clouds.aws.account_id={ACCOUNT}", "--promote-from", "staging")
        assert run.returncode == 0, run.stderr
        assert env_data(root, "qa")["promote_from"] == "staging"
        assert "chain: dev -> staging -> qa (staging also promotes to prod)" in run.stdout

    def test_dry_run_writes_nothing_and_shows_the_file(self, root: Path) -> None:
        """`--dry-run` prints the decisions and the would-be file, and leaves every file as it was."""
        before = files(root)
        run = new(root, "qa", "--blueprint", "aws-account", "--set", f"clouds.aws.account_id={ACCOUNT}", "--dry-run")
        assert run.returncode == 0, run.stderr
        assert files(root) == before
        assert "dry run: nothing written" in run.stdout and "  | variables:" in run.stdout
        assert "would change: + orchestrate/qa" in run.stdout


class TestFromEnvironment:
    def test_from_staging_with_a_new_account_is_valid_and_updates_the_deployments(self, root: Path) -> None:
        """The issue's example: networks re-allocated, names replaced, the role follows the account, prefect.yaml updated."""
        run = new(root, "qa", "--from", "staging", "--promote-from", "dev", "--set", f"clouds.aws.account_id={ACCOUNT}")
        assert run.returncode == 0, run.stderr
        data = env_data(root, "qa")
        assert data["clouds"]["aws"]["role_arn"] == f"arn:aws:iam::{ACCOUNT}:role/strata-deploy"
        assert data["clouds"]["azure"]["resource_group"] == "strata-qa" and data["variables"]["dns_zone"] == "qa.platform.example.com"
        assert data["promote_from"] == "dev" and data["variables"]["node_count"] == 3
        assert_no_overlap(root)
        assert "shares it" in run.stdout  # the Azure subscription was not given
        assert strata("validate", "--config", str(root / "config")).returncode == 0
        check = strata("deployments", "--check", "--config", str(root / "config"))
        assert check.returncode == 0, check.stdout
        assert "name: dev-to-qa" in (root / "prefect.yaml").read_text()

    def test_identities_are_dropped_gates_are_kept(self, root: Path) -> None:
        """Credentials and profiles are not copied; approval, freeze windows, issue tracker and the chain place are."""
        staging = root / "config" / "environments" / "staging.yaml"
        data = yaml.safe_load(staging.read_text())
        data["clouds"]["aws"].update(credentials="aws-staging", profile="staging")
        data["clouds"]["azure"]["credentials"] = "azure-staging"
        data["approval"] = {"required": True, "approvers": ["carol"], "timeout": "2h"}
        data["freeze"] = [{"cron": "0 16 * * 5", "duration": "64h", "reason": "weekends"}]
        data["variables"]["team"] = "stagingish"
        staging.write_text(yaml.safe_dump(data, sort_keys=False))
        run = new(root, "qa", "--from", "staging")
        assert run.returncode == 0, run.stderr
        copy = env_data(root, "qa")
        assert "credentials" not in copy["clouds"]["aws"] and "profile" not in copy["clouds"]["aws"]
        assert "credentials" not in copy["clouds"]["azure"]
        assert copy["approval"] == data["approval"] and copy["freeze"] == data["freeze"]
        assert copy["promote_from"] == "dev" and copy["variables"]["team"] == "stagingish"
        assert run.stdout.count("was not copied") == 3

    def test_renaming_spares_references_and_longer_words(self, tmp_path: Path, root: Path) -> None:
        """The source's name is replaced as a word, never inside `${...}` references or other words."""
        platform = load_platform(root / "config")
        raw = {"variables": {"zone": "staging.example.com", "note": "${env.name} staging stagingish", "x": "restaging"}}
        draft = copyenv.from_environment(platform, "staging", raw, newenv.Request("qa"), [])
        assert draft.data["variables"] == {"zone": "qa.example.com", "note": "${env.name} qa stagingish", "x": "restaging"}

    def test_fan_out_from_one_source_is_fine(self, root: Path) -> None:
        """dev promoting to both staging and qa is allowed, and `env list` shows both under dev."""
        assert new(root, "qa", "--from", "staging", "--promote-from", "dev").returncode == 0
        listed = json.loads(strata("env", "list", "--json", "--config", str(root / "config")).stdout)
        by_name = {row["name"]: row for row in listed}
        assert by_name["dev"]["promotes_to"] == ["qa", "staging"] and by_name["qa"]["chain"] == ["dev", "qa"]


class TestEnvList:
    def test_text_shows_the_chain_clouds_and_approval(self, root: Path) -> None:
        """`strata env list` prints one line per environment in chain order, indented by depth, with clouds and approval."""
        run = strata("env", "list", "--config", str(root / "config"))
        assert run.returncode == 0, run.stderr
        lines = run.stdout.splitlines()
        assert lines[0].split() == ["ENVIRONMENT", "FROM", "CLOUDS", "APPROVAL"]
        assert [line.split()[0] for line in lines[1:]] == ["dev", "staging", "prod"]
        assert lines[3].startswith("    prod") and "eu-west-1 333333333333" in lines[3] and "alice or bob, within 24h" in lines[3]
        assert "not required" in lines[1] and "aws (default) us-east-1 111111111111" in lines[1]


class TestValidateBlueprints:
    def write(self, root: Path, text: str) -> Path:
        path = root / "config" / "blueprints" / "broken.yaml"
        path.write_text(textwrap.dedent(text))
        return path

    def base(self, root: Path) -> str:
        return (root / "config" / "blueprints" / "aws-account.yaml").read_text()

    def test_validate_lists_the_blueprints(self, root: Path) -> None:
        """`strata validate` checks the sample blueprints and names them."""
        run = strata("validate", "--config", str(root / "config"))
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip().endswith("; blueprints: aws-account, eu-region") and run.stderr == ""

    @pytest.mark.parametrize(
        ("old", "new_text", "words"),
        [
            ("    region: us-east-1", "    regoin: us-east-1", ("unknown key 'regoin'", "did you mean 'region'")),
            ("${required the 12-digit", "${requird the 12-digit", ("is not a hole",)),
            ("${subnets /20 8 9 of", "${subnets /20 8 99 of", ("no number 99",)),
            ("${clouds.aws.account_id}", "${clouds.aws.acount_id}", ("names 'clouds.aws.acount_id'", "did you mean")),
            ("  dns_zone: ${name}.platform.example.com\n", "", ("variable 'dns_zone' is used by dns",)),
            ("promote_from: dev", "promote_from: dve", ("unknown environment 'dve'",)),
        ],
        ids=["unknown-key", "unknown-hole", "subnet-out-of-block", "dangling-path", "missing-variable", "unknown-chain-source"],
    )
    def test_a_broken_blueprint_is_a_config_error_with_its_line(self, root: Path, old: str, new_text: str, words: tuple[str, ...]) -> None:
        """A broken blueprint fails `strata validate` (exit 2) with one line naming the blueprint file, line and problem."""
        assert old in self.base(root)
        path = self.write(root, self.base(root).replace(old, new_text))
        run = strata("validate", "--config", str(root / "config"))
        refused(run, f"{path}:", *words)
        assert run.stderr.split(":")[2].isdigit()  # error: FILE:LINE:...

    def test_env_new_refuses_a_broken_blueprint(self, root: Path) -> None:
        """`strata env new` from a broken blueprint is refused with the blueprint's own error, nothing written."""
        self.write(root, self.base(root).replace("    region: us-east-1", "    regoin: us-east-1"))
        before = files(root)
        refused(new(root, "qa", "--blueprint", "broken", "--set", f"clouds.aws.account_id={ACCOUNT}"), "broken.yaml:", "regoin")
        assert files(root) == before

    def test_validate_reports_a_promotion_loop(self, root: Path) -> None:
        """A promote_from loop through several environments is an error of `strata validate`."""
        dev = root / "config" / "environments" / "dev.yaml"
        dev.write_text(dev.read_text() + "promote_from: prod\n")
        refused(strata("validate", "--config", str(root / "config")), "the promotion chain loops", "dev.yaml:")


class TestAllocator:
    @settings(max_examples=150, deadline=None)
    @given(
        pool_prefix=st.integers(20, 28),
        extra=st.integers(0, 4),
        seed_taken=st.lists(st.tuples(st.integers(0, 2**12 - 1), st.integers(18, 32)), max_size=12),
        wanted=st.integers(1, 20),
    )
    def test_first_fit_never_overlaps_and_is_only_exhausted_when_full(
        self, pool_prefix: int, extra: int, seed_taken: list[tuple[int, int]], wanted: int
    ) -> None:
        """Blocks allocated one after another are inside the pool, disjoint from everything taken, the lowest free, and Exhausted means none is free."""
        pool = ipaddress.IPv4Network((0x0A000000, pool_prefix))
        prefix = pool_prefix + extra
        base = int(pool.network_address) - 2**10
        taken: list[cidrs.Network] = [ipaddress.IPv4Network((base + (o << 4), p), strict=False) for o, p in seed_taken]
        for _ in range(wanted):
            free = [b for b in pool.subnets(new_prefix=prefix) if not any(b.overlaps(t) for t in taken)]
            try:
                block = cidrs.allocate(pool, prefix, taken)
            except cidrs.Exhausted:
                assert not free
                return
            assert free and block == free[0]
            taken.append(block)


@pytest.mark.usefixtures("prefect_api")
class TestSandbox:
    @pytest.mark.timeout(600)
    def test_a_copy_of_staging_applies_on_the_sandbox(self, root: Path) -> None:
        """`strata env new NAME --from staging --promote-from dev --set clouds.aws.account_id=...` then `strata apply NAME --sandbox` succeeds."""
        name = unique("qa")
        made = new(root, name, "--from", "staging", "--promote-from", "dev", "--set", f"clouds.aws.account_id={ACCOUNT}")
        assert made.returncode == 0, made.stderr
        applied = strata("apply", name, "--sandbox", "--json", "--config", str(root / "config"), timeout=500)
        assert applied.returncode == 0, applied.stderr[-3000:]
        report = json.loads(applied.stdout)
        assert report["status"] == "succeeded" and report["env"] == name
        assert {c["status"] for c in report["components"].values()} == {"succeeded"}
