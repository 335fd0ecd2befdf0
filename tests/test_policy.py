"""The policy file: schema, defaults, errors at the right line, globs, targets and thresholds."""

from __future__ import annotations

import textwrap

import pytest

from estimator.errors import InputError
from estimator.units import GiB
from rules.gpus import find_gpu
from rules.policy import Target, load_policy, looks_like_training_config, parse_target_comment

DESIGN_POLICY = textwrap.dedent("""\
    paths: ["configs/**/*.yaml"]          # which files are training configs
    pools:                                # the declared GPU inventory
      - {name: a100, gpu: A100-80GB, per_node: 8, nodes: 2}
      - {name: dev, gpu: RTX-4090, per_node: 2}
    default_pool: a100
    headroom: 0.10                        # above 90% of usable memory is "tight"
    """)


def policy_error(text: str) -> InputError:
    with pytest.raises(InputError) as error:
        load_policy(textwrap.dedent(text))
    return error.value


def test_design_example_policy_loads() -> None:
    policy = load_policy(DESIGN_POLICY)
    assert [pool.name for pool in policy.pools] == ["a100", "dev"]
    a100 = policy.pool("a100")
    assert a100.gpu == find_gpu("A100-80GB") and a100.per_node == 8 and a100.nodes == 2 and a100.gpus == 16
    dev = policy.pool("dev")
    assert dev.gpu.name == "RTX-4090" and dev.nodes == 1  # nodes defaults to 1
    assert policy.default_pool == "a100" and policy.headroom == 0.10 and policy.fail_on == {"no-fit"}
    assert policy.fail_above is None and policy.notes == ()


def test_no_policy_file_gives_defaults_and_says_so() -> None:
    policy = load_policy(None)
    assert [(pool.name, pool.gpu.name, pool.gpus) for pool in policy.pools] == [("default", "A100-80GB-SXM", 8)]
    assert policy.headroom == 0.10 and policy.fail_on == {"no-fit"}
    assert policy.only_training_configs
    assert len(policy.notes) == 1 and "no .github/vram-check.yml" in policy.notes[0]
    assert policy.matches("configs/llama3_lora_sft.yaml") and policy.matches("train.yml")


def test_training_config_detection() -> None:
    assert looks_like_training_config({"model_name_or_path": "Qwen/Qwen2.5-7B", "stage": "sft"})
    assert looks_like_training_config({"model_name_or_path": "x", "do_train": True})
    assert not looks_like_training_config({"model_name_or_path": "x"})  # e.g. an inference config
    assert not looks_like_training_config({"pools": []})
    assert not looks_like_training_config(None)


@pytest.mark.parametrize(
    ("path", "selected"),
    [
        ("configs/a.yaml", True),
        ("configs/team/deep/b.yaml", True),  # ** crosses directories
        ("configs/a.yml", False),
        ("other/configs/a.yaml", False),
        ("./configs/a.yaml", True),
    ],
)
def test_globs_follow_github_semantics(path: str, selected: bool) -> None:
    assert load_policy(DESIGN_POLICY).matches(path) is selected


def test_single_star_stays_in_one_directory_and_negation_excludes() -> None:
    policy = load_policy('paths: ["configs/*.yaml", "**/*.yml", "!**/ds_*.yml"]\n')
    assert policy.matches("configs/a.yaml")
    assert not policy.matches("configs/sub/a.yaml")
    assert policy.matches("a.yml") and policy.matches("x/y/a.yml")  # **/ also matches no directory
    assert not policy.matches("x/ds_z3.yml")


def test_unknown_key_gets_did_you_mean_at_its_line() -> None:
    error = policy_error("""\
        pools:
          - {name: a, gpu: A100-80GB, per_node: 8}
        headrom: 0.2
        """)
    assert error.line == 3 and error.file == ".github/vram-check.yml"
    assert "unknown key 'headrom'" in str(error) and "did you mean 'headroom'" in str(error)
    assert str(error).startswith(".github/vram-check.yml:3: ")


def test_unknown_pool_key_points_at_the_pool_line() -> None:
    error = policy_error("""\
        pools:
          - name: a
            gpu: A100-80GB
            per_nodes: 8
        """)
    assert error.line == 4 and "did you mean 'per_node'" in str(error)


def test_zero_gpus_is_an_error_at_its_line() -> None:
    error = policy_error("""\
        pools:
          - name: a
            gpu: A100-80GB
            per_node: 0
        """)
    assert error.line == 4 and "at least 1 GPU" in str(error)


def test_pool_without_gpu_or_memory() -> None:
    error = policy_error("""\
        pools:
          - {name: a, per_node: 8}
        """)
    assert error.line == 2 and "needs gpu:" in str(error)


def test_unknown_gpu_lists_close_names_at_its_line() -> None:
    error = policy_error("""\
        pools:
          - name: a
            per_node: 8
            gpu: A100-60GB
        """)
    assert error.line == 4 and "unknown GPU 'A100-60GB'" in str(error) and "A100-80GB-PCIe" in str(error)


def test_default_pool_must_be_a_pool() -> None:
    error = policy_error("""\
        pools:
          - {name: a100, gpu: A100-80GB, per_node: 8}
        default_pool: a10
        """)
    assert error.line == 3 and "default_pool 'a10' is not a pool" in str(error)
    assert "did you mean 'a100'" in str(error)


@pytest.mark.parametrize("headroom", ["-0.1", "0.6"])
def test_headroom_outside_range(headroom: str) -> None:
    error = policy_error(f"""\
        pools:
          - {{name: a, gpu: A100-80GB, per_node: 8}}
        headroom: {headroom}
        """)
    assert error.line == 3 and "headroom must be between 0 and 0.5" in str(error)


def test_wrong_type_names_key_and_line() -> None:
    error = policy_error("""\
        pools:
          - {name: a, gpu: A100-80GB, per_node: eight}
        """)
    assert error.line == 2 and "pools[0].per_node" in str(error)


def test_bad_fail_on_value() -> None:
    error = policy_error("""\
        pools:
          - {name: a, gpu: A100-80GB, per_node: 8}

        fail_on: sometimes
        """)
    assert error.line == 4 and "fail_on" in str(error)


def test_yaml_syntax_error_has_a_line() -> None:
    error = policy_error("""\
        pools:
          - {name: a, gpu: A100-80GB
        headroom: 0.1
        """)
    assert error.line is not None and "malformed YAML" in str(error)


def test_memory_gib_pool_and_ambiguous_gpu_note() -> None:
    policy = load_policy(textwrap.dedent("""\
        pools:
          - {name: lab, memory_gib: 40, per_node: 4}
          - {name: h, gpu: h100, per_node: 8}
        """))
    lab = policy.pool("lab")
    assert lab.gpu.usable_bytes == 40 * GiB and lab.gpus == 4
    assert policy.default_pool == "lab"  # first pool when default_pool is absent
    assert any("pool 'h'" in note and "H100-SXM" in note for note in policy.notes)


def test_unknown_pool_lookup_suggests() -> None:
    with pytest.raises(InputError, match="did you mean 'dev'"):
        load_policy(DESIGN_POLICY).pool("deb")


@pytest.mark.parametrize(("written", "failing"), [
    ("", {"no-fit"}),
    ("fail_on: tight\n", {"tight", "no-fit"}),
    ("fail_on: unknown\n", {"unknown", "no-fit"}),
    ("fail_on: [tight, unknown]\n", {"tight", "unknown", "no-fit"}),
    ("fail_on: never\n", set()),
])
def test_fail_on_names_the_verdicts_that_fail(written: str, failing: set[str]) -> None:
    assert load_policy(DESIGN_POLICY + written).fail_on == failing


def test_fail_on_never_cannot_be_combined() -> None:
    error = policy_error(DESIGN_POLICY + "fail_on: [never, tight]\n")
    assert "never cannot be combined" in str(error) and error.line == 7


@pytest.mark.parametrize("value", ["0", "1.5"])
def test_fail_above_must_be_a_fraction(value: str) -> None:
    error = policy_error(f"""\
        pools:
          - {{name: a, gpu: A100-80GB, per_node: 8}}
        fail_above: {value}
        """)
    assert error.line == 3 and "fail_above" in str(error)


def test_empty_policy_file_uses_defaults() -> None:
    policy = load_policy("# nothing yet\n")
    assert policy.pools[0].gpus == 8 and "empty" in policy.notes[0]


CONFIG = """\
### model
model_name_or_path: Qwen/Qwen2.5-7B   # vram-check: pool=dev gpus=2
stage: sft
"""


def test_target_comment_is_parsed_with_its_line() -> None:
    target = parse_target_comment(CONFIG)
    assert target == Target(pool="dev", gpus=2, line=2)
    assert parse_target_comment("# vram-check: gpu=h100-nvl nodes=2\n") == Target(
        gpu=find_gpu("H100-NVL"), nodes=2, line=1)
    assert parse_target_comment("stage: sft\n") is None
    assert parse_target_comment("note: 'vram-check: pool=x'\n") is None  # not a comment


@pytest.mark.parametrize(
    ("comment", "expected"),
    [
        ("# vram-check: pool=dev gpus=two", "gpus= must be a whole number"),
        ("# vram-check: pool=dev gpus=0", "from 1 to 72, got '0'"),
        ("# vram-check: gpu=RTX-4090 gpus=100000 nodes=100000", "from 1 to 72, got '100000'"),
        ("# vram-check: gpu=RTX-4090 nodes=1025", "nodes= must be a whole number from 1 to 1024"),
        ("# vram-check: gpus=²", "got '²'"),
        ("# vram-check: gpus=" + "9" * 5000, "got '9999"),
        ("# vram-check: pools=dev", "did you mean 'pool'"),
        ("# vram-check: gpu=Z100", "unknown GPU 'Z100'"),
        ("# vram-check: pool=dev gpu=4090", "both pool= and gpu="),
        ("# vram-check: dev", "key=value"),
        ("# vram-check:", "empty"),
    ],
)
def test_bad_target_comments(comment: str, expected: str) -> None:
    with pytest.raises(InputError, match=expected) as error:
        parse_target_comment(f"stage: sft\n{comment}\n", path="configs/a.yaml")
    assert error.value.line == 2 and error.value.file == "configs/a.yaml"


def test_target_resolves_against_the_policy() -> None:
    policy = load_policy(DESIGN_POLICY)
    assert policy.resolve_target(None).name == "a100"
    dev = policy.resolve_target(Target(pool="dev", gpus=1, line=1))
    assert dev.gpu.name == "RTX-4090" and dev.gpus == 1
    adhoc = policy.resolve_target(Target(gpu=find_gpu("L40S"), gpus=4))
    assert adhoc.gpu.name == "L40S" and adhoc.gpus == 4
    with pytest.raises(InputError, match="has 2 GPU"):
        policy.resolve_target(Target(pool="dev", gpus=4, line=7), file="configs/a.yaml")
    with pytest.raises(InputError, match="no pool named 'gpu'"):
        policy.resolve_target(Target(pool="gpu", line=1))


def test_a_single_glob_may_be_a_plain_string() -> None:
    policy = load_policy("paths: configs/**/*.yaml\n")
    assert policy.paths == ("configs/**/*.yaml",) and policy.matches("configs/x/a.yaml")


def test_empty_paths_list_is_an_error() -> None:
    error = policy_error("""\
        pools:
          - {name: a, gpu: A100-80GB, per_node: 8}
        paths: []
        """)
    assert error.line == 3 and "paths is empty" in str(error)
