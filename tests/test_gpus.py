"""The GPU catalog: forgiving names, ambiguity notes, unknown names, capabilities and capacities."""

from __future__ import annotations

import pytest

from estimator.errors import InputError
from estimator.units import GiB, MiB
from rules.gpus import catalog, custom_gpu, find_gpu, match_gpu


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("a100-80g", "A100-80GB-SXM"),
        ("A100 80GB", "A100-80GB-SXM"),
        ("A100-80GB", "A100-80GB-SXM"),  # the spelling DESIGN.md's example policy uses
        ("NVIDIA A100-SXM4-80GB", "A100-80GB-SXM"),  # torch.cuda.get_device_name() on an SXM4 board
        ("nvidia a100 80gb pcie", "A100-80GB-PCIe"),
        ("NVIDIA A100-PCIE-40GB", "A100-40GB-PCIe"),
        ("4090", "RTX-4090"),
        ("RTX-4090", "RTX-4090"),
        ("NVIDIA GeForce RTX 4090 D", "RTX-4090D"),
        ("NVIDIA H100 80GB HBM3", "H100-SXM"),  # nvidia-smi's name for the SXM5 board
        ("H100 NVL", "H100-NVL"),
        ("h100 94gb", "H100-NVL"),
        ("Tesla T4", "T4"),
        ("Tesla V100-SXM2-16GB", "V100-16GB"),
        ("a10g", "A10G"),
        ("A10", "A10"),
        ("l4", "L4"),
        ("L40S", "L40S"),
        ("h20", "H20"),
        ("H200", "H200"),
        ("RTX A6000", "RTX-A6000"),
        ("Ascend 910B", "Ascend-910B"),
        ("AMD Instinct MI300X", "MI300X"),
    ],
)
def test_forgiving_names_resolve_to_one_sku(typed: str, canonical: str) -> None:
    assert find_gpu(typed).name == canonical


@pytest.mark.parametrize(("typed", "assumed"), [("h100", "H100-SXM"), ("a100", "A100-80GB-SXM"),
                                                ("v100", "V100-32GB")])
def test_ambiguous_family_picks_the_common_sku_and_says_so(typed: str, assumed: str) -> None:
    match = match_gpu(typed)
    assert match.gpu.name == assumed
    assert match.note is not None and assumed in match.note and "ambiguous" in match.note


def test_sku_variants_with_equal_memory_need_no_note() -> None:
    # A100 80GB SXM and PCIe have the same usable memory: naming neither form changes nothing.
    assert match_gpu("A100 80GB").note is None


def test_unknown_name_lists_three_close_catalog_names() -> None:
    with pytest.raises(InputError) as error:
        find_gpu("A100-60GB")
    message = str(error.value)
    assert "unknown GPU 'A100-60GB'" in message
    assert message.count("A100-") == 3 + 1  # the typed name and three A100 SKUs


def test_unknown_family_uses_closest_spelling() -> None:
    with pytest.raises(InputError, match="RTX-4090"):
        find_gpu("rtx 4080")


def test_memory_is_reported_as_the_vendor_specifies() -> None:
    a100 = find_gpu("A100-80GB")
    assert a100.nominal_bytes == 80 * GiB  # "80GB" on GPU memory is 2^30-byte GB
    assert a100.total_bytes == 81920 * MiB  # nvidia-smi's total
    h100 = find_gpu("H100-SXM")
    assert h100.total_bytes == 81559 * MiB  # nvidia-smi on "NVIDIA H100 80GB HBM3"
    # PyTorch's OOM message on H100 reads "total capacity of 79.11 GiB": usable, below nvidia-smi.
    assert h100.usable_gib == pytest.approx(79.11, abs=0.01)


def test_usable_memory_is_below_the_total_for_every_gpu() -> None:
    for gpu in catalog():
        assert 0.95 * gpu.total_bytes <= gpu.usable_bytes <= gpu.total_bytes, gpu.name
        assert gpu.source, gpu.name


def test_bf16_and_flash_attention_follow_compute_capability() -> None:
    for name in ("V100-16GB", "V100-32GB", "T4"):
        gpu = find_gpu(name)
        assert gpu.bf16 is False and gpu.flash_attention_2 is False
    for name in ("A100-80GB", "A10G", "RTX-3090", "RTX-4090", "L40S", "H100-SXM"):
        gpu = find_gpu(name)
        assert gpu.bf16 is True and gpu.flash_attention_2 is True
    assert find_gpu("H100-SXM").flash_attention_3 is True
    assert find_gpu("A100-80GB").flash_attention_3 is False


def test_non_nvidia_parts_are_marked() -> None:
    ascend = find_gpu("910B")
    # LLaMA-Factory accepts flash_attn: fa2 on NPUs (model_utils/attention.py), through torch_npu.
    assert ascend.vendor == "huawei" and ascend.bf16 is True and ascend.flash_attention_2 is True
    assert "torch_npu" in ascend.note
    mi300x = find_gpu("MI300X")
    assert mi300x.vendor == "amd" and mi300x.compute_capability is None


def test_required_catalog_is_complete() -> None:
    names = {gpu.name for gpu in catalog()}
    required = {"V100-16GB", "V100-32GB", "T4", "A10", "A10G", "L4", "L20", "L40", "L40S", "RTX-3090",
                "RTX-4090", "RTX-4090D", "RTX-A6000", "A100-40GB-PCIe", "A100-40GB-SXM", "A100-80GB-PCIe",
                "A100-80GB-SXM", "A800-80GB", "H100-PCIe", "H100-SXM", "H100-NVL", "H800", "H20", "H200",
                "B200", "Ascend-910B", "MI300X"}
    assert required <= names


def test_custom_gpu_takes_memory_as_usable() -> None:
    gpu = custom_gpu(40)
    assert gpu.usable_bytes == 40 * GiB
    assert gpu.bf16 is None  # unknown: capability rules stay silent
    with pytest.raises(InputError, match="memory_gib"):
        custom_gpu(0)


def test_empty_name_is_an_input_error() -> None:
    with pytest.raises(InputError):
        find_gpu("  ")
