"""Built-in plugins. Each module registers its classes through the hooks in
:mod:`regsuite.hookspecs`, exactly as a third-party plugin would."""
from regsuite.plugins.datasets import digits, nltk_treebank, tiny_imagenet
from regsuite.plugins.models import custom_cnn, efficientnet_b0, rnn_tagger, small_cnn
from regsuite.plugins.regularizers import augmentation, dropout, l2, maxdropout, word_dropout
from regsuite.plugins.regularizers import cutmix, label_smoothing, mixup, random_erasing
from regsuite.plugins.regularizers import confidence_penalty, drop_path, early_stopping, max_norm, weight_decay
from regsuite.plugins.tasks import image_classification, sequence_labelling

MODULES = [
    image_classification,
    sequence_labelling,
    digits,
    tiny_imagenet,
    nltk_treebank,
    small_cnn,
    custom_cnn,
    efficientnet_b0,
    rnn_tagger,
    l2,
    dropout,
    maxdropout,
    augmentation,
    word_dropout,
    label_smoothing,
    mixup,
    cutmix,
    random_erasing,
    weight_decay,
    max_norm,
    confidence_penalty,
    drop_path,
    early_stopping,
]
