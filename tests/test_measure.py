"""One measurement of size and speed (cvdemo.measure): parameters, bytes on disk, latency."""
import pytest
import torch
from torch import nn

from cvdemo import measure
from cvdemo.errors import LimitError
from cvdemo.models.classics import AlexNet


def test_one_measurement_of_size_and_speed(tmp_path):
    from safetensors.torch import save_file


    model = AlexNet(num_classes=10, small=True).train()
    timed = measure.latency(model, torch.randn(3, 32, 32), runs=5, warmup=1)
    assert timed.median > 0 and len(timed.times) >= 1 and model.training  # the model's mode is put back
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "m.safetensors"),
              metadata={"format": "pt"})
    assert measure.disk_bytes(model) == (tmp_path / "m.safetensors").stat().st_size
    layer = nn.Linear(4, 4)
    assert measure.params(nn.Sequential(layer, layer)) == 20  # a layer used twice counts once
    with pytest.raises(LimitError):
        measure.latency(model, torch.randn(3, 32, 32), runs=0)
