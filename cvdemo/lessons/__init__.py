"""The CNN lessons: every lecture claim shown by a measurement on real, built models. Three modules:

- `anatomy`: what a built network is made of and costs (layer table with receptive fields and FLOPs,
  stacked 3x3 convolutions, latency, the pretrained model's feature maps).
- `experiments`: live, measured runs (FC vs CNN on shifted digits, a classic trained from scratch,
  "does augmentation fight bias?", AlexNet's pieces over seeds).
- `nearest`: the lecture's starting point, "store every image and search" (k-NN on pixels and on pretrained
  features as the stored set grows, beside a linear probe).

    from cvdemo import lessons
    from cvdemo.models import create_model
    rows = lessons.layer_table(create_model("paper_alexnet"))    # per layer: shape, params, FLOPs, receptive field
    lessons.layer_report("paper_vgg16", (3, 224, 224))        # the same for a name, with CPU latency (models kept)
    lessons.stacked_3x3_lesson()                            # 2 x 3x3 = RF 5 with 18C^2 params vs 25C^2
    lessons.latency_table()                                 # ms per image (CPU, batch 1) next to params / FLOPs
    lessons.feature_maps(image)                             # what the pretrained model's layers respond to
    shapes, defaults = lessons.feature_layers()             # the layers it can show, their output shapes
    lessons.fc_vs_cnn_shift()                               # an MLP and a CNN, trained centred, tested shifted
    lessons.fc_vs_cnn_shift(fixes=True)                     # + a shift-augmented MLP, an anti-aliased CNN
    lessons.bias_experiment()                               # does augmentation fight bias? (dark faces, a probe)
    for event in lessons.train_classic("small_alexnet"): ...   # a classic trained from scratch (cvdemo.train.fit)
    for event in lessons.alexnet_pieces("norm", seeds=3): ...   # LRN vs BN (ReLU vs tanh, dropout) over seeds
    for event in lessons.mix_training("cutmix"): ...        # the same small CNN with and without CutMix / MixUp
    lessons.knn_growth("textures")                          # k-NN on pixels / features vs a probe, stored set growing
"""
from .anatomy import (GLOBAL, LATENCY_MODELS, NA, available_layers, cpu_name, default_layers, fc_params, feature_layers,
                      feature_maps, latency, latency_table, layer_report, layer_table, stacked_3x3_lesson)
from .experiments import (ALEXNET_PIECES, CLASSIC_NAMES, DARK, MAX_PIECE_SEEDS, SHIFT_NOTE, alexnet_pieces,
                          bias_experiment, darken, fc_vs_cnn_shift, first_layer_weights, fit_linear, mix_training,
                          shift_summary, train_classic, weight_grid)
from .nearest import knn_growth, knn_predict, stored_sizes

__all__ = ["ALEXNET_PIECES", "CLASSIC_NAMES", "DARK", "GLOBAL", "LATENCY_MODELS", "MAX_PIECE_SEEDS", "NA", "SHIFT_NOTE",
           "alexnet_pieces", "available_layers", "bias_experiment", "cpu_name", "darken", "default_layers", "fc_params",
           "fc_vs_cnn_shift", "feature_layers", "feature_maps", "first_layer_weights", "fit_linear", "knn_growth",
           "knn_predict", "latency", "latency_table", "layer_report", "layer_table", "mix_training", "shift_summary",
           "stacked_3x3_lesson", "stored_sizes", "train_classic", "weight_grid"]
