"""fastinit: fast, reproducible neural-network weight-initialization studies on multicore CPUs.

    >>> import fastinit
    >>> w = fastinit.sample("kaiming_normal", (128, 64), seed=0, n=16)   # 16 members
    >>> net = fastinit.MLP([64, 64, 10], init=["he_normal", "zeros"], n=2, seed=0)
    >>> history = fastinit.train(net, fastinit.datasets.digits(), epochs=2, lr=0.1)
"""
__version__ = "0.1.0"       # first: modules imported below (store) read it

from . import builtin_schemes  # registers the built-in schemes, before anything looks one up
from . import datasets, interop, theory
from .datainit import kraehenbuehl, lsuv
from .diagnose import Diagnostics, diagnose, jacobian_singular_values
from .fans import compute_fans
from .frames import load_curves, load_runs
from .gain import calculate_gain
from .layerwise import forward_layers
from .network import ACTIVATIONS, LOSSES, MLP
from .profiler import Profile, profile
from .residual import ResMLP
from .sample import sample
from ._validate import Param
from .registry import InitSpec, Scheme, get_scheme, register_scheme, schemes, spec
from .training import OPTIMIZERS, History, train

__all__ = ["ACTIVATIONS", "Diagnostics", "History", "InitSpec", "LOSSES", "MLP", "OPTIMIZERS",
           "Param", "Profile", "Scheme", "calculate_gain", "compute_fans", "datasets",
           "diagnose", "forward_layers", "get_scheme", "jacobian_singular_values", "interop",
           "kraehenbuehl", "load_curves", "load_runs", "lsuv", "profile", "register_scheme",
           "ResMLP", "sample", "schemes", "spec", "theory", "train", "__version__"]
