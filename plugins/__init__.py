"""Built-in plugins. Each module registers its classes through the hooks in
:mod:`regsuite.hookspecs`, exactly as a third-party plugin would."""
from regsuite.plugins.datasets import digits, tiny_imagenet
from regsuite.plugins.models import small_cnn
from regsuite.plugins.regularizers import augmentation, dropout, l2
from regsuite.plugins.tasks import image_classification

MODULES = [
    image_classification,
    digits,
    tiny_imagenet,
    small_cnn,
    l2,
    dropout,
    augmentation,
]
