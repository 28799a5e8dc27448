"""Built-in plugins. Each module registers its classes through the hooks in
:mod:`regsuite.hookspecs`, exactly as a third-party plugin would."""
from regsuite.plugins.datasets import digits
from regsuite.plugins.models import custom_cnn, efficientnet_b0, small_cnn
from regsuite.plugins.regularizers import augmentation, dropout, l2, maxdropout
from regsuite.plugins.tasks import image_classification

MODULES = [
    image_classification,
    digits,
    small_cnn,
    custom_cnn,
    efficientnet_b0,
    l2,
    dropout,
    maxdropout,
    augmentation,
]
