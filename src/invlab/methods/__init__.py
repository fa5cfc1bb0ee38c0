"""Methods: thin LightningModules that read like their papers' algorithm boxes."""

from invlab.methods.barlow_twins import BarlowTwins
from invlab.methods.base import SSLMethod, StepOutput
from invlab.methods.essl import EBarlowTwins, EquivarianceSpec, Equivariant, ESimCLR, ESimSiam
from invlab.methods.optim import LARS, OptimSpec
from invlab.methods.simclr import SimCLR
from invlab.methods.simsiam import SimSiam
from invlab.methods.supervised_timeseries import SupervisedTimeSeries
from invlab.methods.timedrl import TimeDRL

METHODS = {"simclr": SimCLR, "simsiam": SimSiam, "barlow_twins": BarlowTwins}
METHODS.update(e_simclr=ESimCLR, e_simsiam=ESimSiam, e_barlow_twins=EBarlowTwins)

__all__ = ["BarlowTwins", "SSLMethod", "StepOutput", "LARS", "OptimSpec", "SimCLR", "SimSiam", "METHODS",
           "SupervisedTimeSeries", "TimeDRL"]
__all__ += ["EBarlowTwins", "EquivarianceSpec", "Equivariant", "ESimCLR", "ESimSiam"]
