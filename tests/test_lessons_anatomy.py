"""Model anatomy (cvdemo.lessons.anatomy): receptive fields against hand computation, FLOPs against torch's own
counter, AlexNet's shapes as the paper's, the layer table and report, stacked 3x3, latency, feature maps."""
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cvdemo import lessons, measure
from cvdemo.errors import LimitError
from cvdemo.models import create_model
from cvdemo.models.classics import VGG, AlexNet


def rows_by_name(rows: list[dict]) -> dict[str, dict]:
    return {r["name"]: r for r in rows}


def hand_rf(layers: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """(kernel, stride) in order -> (RF, jump) after each: r += (k - 1) * j; j *= s."""
    r, j, out = 1, 1, []
    for k, s in layers:
        r, j = r + (k - 1) * j, j * s
        out.append((r, j))
    return out


def test_alexnet_as_the_paper_224px_to_9216_features():
    model = AlexNet()
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs] == [
        (96, 11, 4), (256, 5, 1), (384, 3, 1), (384, 3, 1), (256, 3, 1)]
    pools = [m for m in model.features if isinstance(m, nn.MaxPool2d)]
    assert [(p.kernel_size, p.stride) for p in pools] == [(3, 2)] * 3  # overlapping pooling
    assert model.classifier[0].in_features == 9216 and model.classifier[0].out_features == 4096
    shapes = rows_by_name(lessons.layer_table(model))
    assert shapes["features.0"]["output_shape"] == (96, 55, 55)
    assert shapes["features.12"]["output_shape"] == (256, 6, 6)


def test_alexnet_receptive_fields_by_hand():
    rows = rows_by_name(lessons.layer_table(AlexNet()))
    names = ["features.0", "features.2", "features.3", "features.5", "features.6", "features.8", "features.10",
             "features.12"]
    measured = [(rows[n]["rf"], rows[n]["jump"]) for n in names]
    assert measured == hand_rf([(11, 4), (3, 2), (5, 1), (3, 2), (3, 1), (3, 1), (3, 1), (3, 2)])
    assert measured == [(11, 4), (19, 8), (51, 8), (67, 16), (99, 16), (131, 16), (163, 16), (195, 32)]
    assert rows["classifier.0"]["rf"] == "global"


def test_vgg16_receptive_fields_by_hand():
    rows = lessons.layer_table(VGG("D", num_classes=10), (3, 64, 64))  # RFs don't depend on the input size
    spatial = [r for r in rows if r["type"] in ("Conv2d", "MaxPool2d")]
    layers = [(3, 1) if r["type"] == "Conv2d" else (2, 2) for r in spatial]
    assert [(r["rf"], r["jump"]) for r in spatial] == hand_rf(layers)
    convs = [r for r in spatial if r["type"] == "Conv2d"]
    assert len(convs) == 13 and convs[-1]["rf"] == 196 and spatial[-1]["rf"] == 212 and spatial[-1]["jump"] == 32


def test_resnet18_receptive_field_follows_the_branches():
    rows = rows_by_name(lessons.layer_table(create_model("resnet18", pretrained=False), (3, 64, 64)))
    assert (rows["conv1"]["rf"], rows["maxpool"]["rf"]) == (7, 11)
    assert rows["layer1.1.conv2"]["rf"] == 43  # 4 convs 3x3 at jump 4: 11 + 4 * 8
    assert (rows["layer2.0.conv2"]["rf"], rows["layer2.0.downsample.0"]["rf"]) == (67, 43)
    assert rows["layer2.1.conv1"]["rf"] == 67 + 16  # after x + shortcut: the union is the conv path's 67
    assert (rows["layer4.1.conv2"]["rf"], rows["layer4.1.conv2"]["jump"]) == (435, 32)  # the published figure
    assert rows["fc"]["rf"] == "global"


@pytest.mark.parametrize(("name", "size"), [("paper_alexnet", 224), ("paper_vgg11", 112), ("resnet18", 224),
                                            ("tf_efficientnet_lite0", 224)])
def test_flops_agree_with_torch_flop_counter(name, size):
    model = create_model(name, pretrained=False)
    total = lessons.layer_table(model, (3, size, size))[-1]
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    assert total["type"] == "total" and total["params"] == measure.params(model)
    assert abs(total["flops"] - counter.get_total_flops()) <= 0.01 * counter.get_total_flops()


def test_layer_table_rows_and_a_model_fx_cannot_trace():
    rows = lessons.layer_table(AlexNet(num_classes=10, small=True), (3, 32, 32), activations=True)
    conv1 = rows[0]
    assert (conv1["type"], conv1["kernel"], conv1["output_shape"], conv1["params"]) == (
        "Conv2d", "5x5 /1 pad 2", (24, 32, 32), 3 * 24 * 25 + 24)
    assert conv1["flops"] == 2 * 3 * 25 * 24 * 32 * 32 and rows[1]["type"] == "ReLU"

    class Branchy(nn.Module):  # control flow on a value: fx can't trace it
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return self.conv(x) if x.sum() >= 0 else -self.conv(x)

    rows = lessons.layer_table(Branchy(), (3, 8, 8))
    assert rows[0]["output_shape"] == (4, 6, 6) and rows[0]["flops"] == 2 * 27 * 4 * 36 and rows[0]["rf"] == "n/a"


def test_stacked_3x3_lesson():
    lesson = lessons.stacked_3x3_lesson(channels=64)
    c2 = 64 * 64
    got = [(r["layers"], r["rf"], r["params"]) for r in lesson["rows"]]
    assert got == [("2 x conv 3x3", 5, 18 * c2), ("1 x conv 5x5", 5, 25 * c2),
                   ("3 x conv 3x3", 7, 27 * c2), ("1 x conv 7x7", 7, 49 * c2)]
    assert [c["param_ratio"] for c in lesson["comparisons"]] == [18 / 25, 27 / 49]
    assert all(c["same_rf"] for c in lesson["comparisons"])
    assert [r["relus"] for r in lesson["rows"]] == [2, 1, 3, 1]  # one ReLU after every conv, as VGG has


def test_latency():
    ms = lessons.latency(AlexNet(num_classes=10, small=True), (3, 32, 32), runs=3)
    assert isinstance(ms, float) and ms > 0
    (row,) = lessons.latency_table(["small_alexnet"], (3, 32, 32), runs=2)
    assert row["name"] == "small_alexnet" and row["params"] == 704_584 and row["ms_p50"] > 0 and row["gflops"] > 0


def test_feature_maps_first_to_last(examples):
    maps = lessons.feature_maps(examples["cat"])
    assert [name for name, _ in maps] == ["conv_stem", "blocks.1", "blocks.3", "blocks.4", "blocks.6"]
    assert all(isinstance(im, Image.Image) and im.width >= 64 for _, im in maps)
    picked = lessons.feature_maps(examples["cat"], layers=["conv_head", "blocks.0"], channels=4)
    assert [name for name, _ in picked] == ["blocks.0", "conv_head"]  # in the order they run
    from cvdemo.inference import get_classifier

    layers = lessons.available_layers(get_classifier().model)
    assert layers[0] == "conv_stem" and layers.index("blocks.0") < layers.index("blocks.6") < layers.index("conv_head")
    with pytest.raises(LimitError):
        lessons.feature_maps(examples["cat"], layers=["no_such_layer"])
    with pytest.raises(LimitError):
        lessons.feature_maps(examples["cat"], layers=["classifier"])  # no feature map


def test_feature_layers_give_each_layers_output_shape_and_the_default_picks():
    shapes, defaults = lessons.feature_layers()
    assert shapes["conv_stem"] == (32, 112, 112) and defaults[0] == "conv_stem" and set(defaults) <= set(shapes)
    assert list(shapes) == lessons.available_layers(create_model("tf_efficientnet_lite0", pretrained=False))


def test_layer_report_measures_a_model_and_refuses_a_size_it_cant_take():
    report = lessons.layer_report("small_alexnet", (3, 32, 32), runs=1)
    assert report["rows"][-1]["name"] == "total" and report["ms"] > 0 and report["threads"] >= 1
    assert report["deepest"]["kernel"] and isinstance(report["deepest"]["rf"], int)
    with pytest.raises(LimitError) as err:
        lessons.layer_report("small_alexnet", (3, 4, 4), runs=1)
    assert err.value.code == "limit.input_size"


def test_where_the_parameters_are_fc_layers_by_hand():
    """VGG16's three FC layers, by hand: 25088*4096+4096 + 4096*4096+4096 + 4096*1000+1000 = 123,642,856, 89% of
    138,357,544; LeNet-5 is measured on its own 1x32x32 input whatever size is asked."""
    with torch.device("meta"):
        rows = lessons.layer_table(VGG("D"), (3, 224, 224))
    fc = 25088 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 1000 + 1000
    assert lessons.fc_params(rows) == fc == 123_642_856 and round(fc / rows[-1]["params"], 3) == 0.894
    report = lessons.layer_report("lenet5", (3, 224, 224), runs=1)
    assert report["input_size"] == (1, 32, 32) and report["rows"][-1]["params"] == 60_850
    assert report["fc_params"] == 120 * 84 + 84 + 84 * 10 + 10  # F6 and the output layer (C5 is a conv)
    c5 = next(r for r in report["rows"] if r["name"] == "features.10")
    assert c5["rf"] == 32 and report["rows"][-1]["rf"] == "global"  # C5 sees the whole 32 px input
