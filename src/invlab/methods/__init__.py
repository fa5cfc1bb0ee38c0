"""Methods: thin LightningModules that read like their papers' algorithm boxes.

Each method file owns its recipe parameters and its :class:`~invlab.methods.spec.MethodSpec`;
:mod:`invlab.methods.registry` is the one table of methods a recipe can name.
"""

from invlab.methods.barlow_twins import BarlowTwins
from invlab.methods.base import SSLMethod, StepOutput
from invlab.methods.essl import EBarlowTwins, EquivarianceSpec, Equivariant, ESimCLR, ESimSiam
from invlab.methods.hdc import HDC, ClipSimCLR
from invlab.methods.invariance_propagation import InvariancePropagation
from invlab.methods.optim import LARS, OptimSpec
from invlab.methods.registry import METHODS, register_method, registered
from invlab.methods.simclr import SimCLR
from invlab.methods.simsiam import SimSiam
from invlab.methods.spec import MethodSpec
from invlab.methods.supervised import Supervised
from invlab.methods.supervised_timeseries import SupervisedTimeSeries
from invlab.methods.timedrl import TimeDRL
from invlab.methods.transitive_invariance import TransitiveInvariance

__all__ = ["BarlowTwins", "SSLMethod", "StepOutput", "LARS", "OptimSpec", "SimCLR", "SimSiam", "Supervised",
           "METHODS", "MethodSpec", "register_method", "registered", "SupervisedTimeSeries", "TimeDRL"]
__all__ += ["EBarlowTwins", "EquivarianceSpec", "Equivariant", "ESimCLR", "ESimSiam", "HDC", "ClipSimCLR"]
__all__ += ["InvariancePropagation", "TransitiveInvariance"]
