import pytest
import torch

from crnn import build_model_from_config
from crnn.config import ArchitectureConfig, BackboneConfig, NeckConfig
from crnn.models import build_model

from .conftest import ROOT

BACKBONE_CASES = [
    BackboneConfig("MobileNetV3", {"model_name": "large", "scale": 0.5}),
    BackboneConfig("MobileNetV3", {"model_name": "small", "scale": 0.35, "small_stride": [1, 2, 2, 2]}),
    BackboneConfig("MobileNetV3", {"model_name": "large", "scale": 1.0, "disable_se": True}),
    BackboneConfig("ResNet", {"layers": 18}),
    BackboneConfig("ResNet", {"layers": 34}),
    BackboneConfig("ResNet", {"layers": 50}),
]


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


@pytest.mark.parametrize(("name", "params", "backbone_params"), [
    ("rec_mv3_none_bilstm_ctc", 1_451_787, 778_022),
    ("rec_r34_vd_none_bilstm_ctc", 24_481_029, 21_308_128),
])
def test_parameter_counts_equal_paddleocr(name: str, params: int, backbone_params: int) -> None:
    model = build_model_from_config(str(ROOT / "configs" / "rec" / f"{name}.yml"))
    assert count(model) == params
    assert count(model.backbone) == backbone_params
    assert model.head.fc.out_features == 37


def _case_id(bb: BackboneConfig) -> str:
    return f"{bb.name}-{bb.params.get('layers') or bb.params['model_name']}"


@pytest.mark.parametrize("bb", BACKBONE_CASES, ids=_case_id)
@pytest.mark.parametrize("width", [100, 160])
def test_shapes_and_out_channels(bb: BackboneConfig, width: int) -> None:
    torch.manual_seed(0)
    model = build_model(ArchitectureConfig(Backbone=bb, Neck=NeckConfig(params={"hidden_size": 16})), num_classes=11)
    x = torch.randn(2, 3, 32, width)
    feats = model.backbone(x)
    assert feats.shape == (2, model.backbone.out_channels, 1, width // 4)
    logits = model(x)
    assert logits.shape == (2, width // 4, 11)
    logits.logsumexp(-1).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


def test_se_gate_uses_slope_0_2() -> None:
    from crnn.models.layers import SqueezeExcite

    se = SqueezeExcite(8)
    for p in se.parameters():
        torch.nn.init.zeros_(p)
    torch.nn.init.constant_(se.conv2.bias, 1.0)  # gate input 1 -> clip(0.2 + 0.5) = 0.7, not 1/6 + 0.5
    x = torch.ones(1, 8, 2, 2)
    assert torch.allclose(se(x), torch.full_like(x, 0.7))


def test_rejects_non_unit_height() -> None:
    arch = ArchitectureConfig(Backbone=BackboneConfig("MobileNetV3", {"model_name": "large", "scale": 0.5}))
    model = build_model(arch, num_classes=37)
    with pytest.raises(ValueError, match="height 1"):
        model(torch.zeros(1, 3, 64, 100))
