"""The built-in schemes, as data: one line of family and arguments, a formula and a paper each.

Importing this module registers them (``fastinit/__init__.py`` does, first thing, so they are
there whenever any part of fastinit is imported). Naming makes each framework's semantics
unambiguous:

- PyTorch names have PyTorch semantics: ``xavier_*``, ``kaiming_*`` (gain, a, mode,
  nonlinearity; normal = untruncated), ``trunc_normal`` (absolute bounds, no correction).
- Keras/JAX names have Keras/JAX semantics: ``glorot_*``, ``he_*``, ``lecun_*``,
  ``variance_scaling``; their ``*_normal`` is a normal truncated at +-2 std whose variance is
  corrected (divided by 0.87962566103423978) so the final variance is exactly scale / fan.
  Where Keras and JAX disagree (variance_scaling's distribution="normal": truncated in Keras,
  untruncated in JAX) ``variance_scaling`` is JAX's and ``keras_variance_scaling`` Keras's.
- Prefixed aliases say where a name comes from: ``torch.xavier_normal``, ``keras.he_normal``,
  ``jax.lecun_normal``, ``flax.dense``.
- Framework presets (``torch_linear``, ``keras_dense``, ``flax_dense``) give a layer's exact
  default, weight and ``bias`` scheme.
"""
from __future__ import annotations

import functools
import math

from ._validate import Param as P
from .activations import ACTIVATIONS, PARAMETERS, TABLE, check_param
from .families import DISTRIBUTIONS
from .fans import MODES
from .gain import TORCH_NAMES, calculate_gain
from .meanfield import critical_sigma_w2
from .registry import Scheme, register_scheme


def _torch_kaiming(distribution):
    def derive(p, fan_in, fan_out):
        g = calculate_gain(p["nonlinearity"], p["a"], method="torch")
        return dict(scale=g * g, mode=p["mode"], distribution=distribution)
    return derive


def _torch_xavier(distribution):
    def derive(p, fan_in, fan_out):
        scale = p["gain"] * p["gain"]           # gain ** 2 raises Python's OverflowError
        if not math.isfinite(scale):
            raise ValueError(f"scheme 'xavier_{distribution}': gain={p['gain']!r} squared is "
                             f"beyond float64's range: the weights' variance would be inf.")
        return dict(scale=scale, mode="fan_avg", distribution=distribution)
    return derive


def _torch_linear_bias(p, fan_in, fan_out):
    if fan_in is None:
        raise ValueError("scheme 'torch_linear_bias' needs the fan_in of its layer's weight: "
                         "pass fan_in=.")
    bound = 1.0 / math.sqrt(fan_in)
    return dict(low=-bound, high=bound)


_KERAS_MODES = ("fan_in", "fan_out", "fan_avg")
_KERAS_DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform", "normal")


def _keras_variance_scaling(p, fan_in, fan_out):
    """Keras's VarianceScaling reads distribution="normal" as "truncated_normal" (JAX's
    variance_scaling, fastinit's, as untruncated)."""
    normal = p["distribution"] == "normal"
    return dict(scale=p["scale"], mode=p["mode"],
                distribution="truncated_normal" if normal else p["distribution"])


_KAIMING_PARAMS = (
    P("a", 0.0, doc="negative slope of leaky_relu (any sign: the gain uses a^2, as PyTorch)"),
    P("mode", "fan_in", "choice", ("fan_in", "fan_out")),
    P("nonlinearity", "leaky_relu", "choice", TORCH_NAMES),
)
_MEAN_STD = (P("mean", 0.0), P("std", 1.0, "positive"))


def _keras(name, scale, mode, distribution, formula, paper):
    return Scheme(name, "variance_scaling",
                  fixed=dict(scale=scale, mode=mode, distribution=distribution),
                  formula=formula, reference=f"{paper}; keras.initializers, "
                                             f"jax.nn.initializers", framework="keras/jax",
                  aliases=(f"keras.{name}", f"jax.{name}"))


_GLOROT = "Glorot & Bengio, AISTATS 2010"
_HE = "He et al., ICCV 2015"
_LECUN = "LeCun et al., Efficient BackProp, 1998"
_TRUNC = "N(0, 1) truncated to (-2, 2), divided by 0.8796..."


@functools.lru_cache(maxsize=256)
def _critical(activation: str, sigma_b2: float, param: float | None = None) -> float:
    """The edge of chaos sigma_w*^2, cached: the bisection takes milliseconds per call."""
    return critical_sigma_w2(activation, sigma_b2, param)


def _eoc_param(name: str, p) -> float | None:
    """The activation_param of edge_of_chaos(_bias) ``p``, checked against its activation:
    None (the activation's default), or a value of one whose parameter shapes phi."""
    value, activation = p["activation_param"], p["activation"]
    if value is None:
        return None
    if activation not in PARAMETERS:
        raise ValueError(f"scheme {name!r}: activation_param={value!r} was given, but the "
                         f"{activation!r} activation takes no parameter; only "
                         f"{sorted(PARAMETERS)} take one.")
    return check_param(TABLE[activation], value, f"scheme {name!r}")


def _eoc_weight(p, fan_in, fan_out):
    scale = _critical(p["activation"], p["sigma_b2"], _eoc_param("edge_of_chaos", p))
    return dict(scale=scale, mode="fan_in", distribution="normal")


def _eoc_bias(p, fan_in, fan_out):
    _eoc_param("edge_of_chaos_bias", p)       # shared with the weight's spec: checked alike
    return dict(mean=0.0, std=math.sqrt(p["sigma_b2"]))


_EOC_PARAMS = (P("activation", "tanh", "choice", tuple(ACTIVATIONS)),
               P("sigma_b2", 0.05, "nonnegative", doc="bias variance sigma_b^2"),
               P("activation_param", None, "optional_real",
                 doc="the activation's parameter (leaky slope, elu alpha, softplus beta); "
                     "None: the network's, else the activation's default"))

BUILTIN: tuple[Scheme, ...] = (
    Scheme("zeros", "constant", fixed=dict(value=0.0), formula="w = 0",
           reference="torch.nn.init.zeros_", framework="all",
           description="no symmetry breaking: hidden units get zero gradient (tanh, relu)"),
    Scheme("ones", "constant", fixed=dict(value=1.0), formula="w = 1",
           reference="torch.nn.init.ones_", framework="all"),
    Scheme("constant", "constant", params=(P("value", doc="the constant"),),
           formula="w = value", reference="torch.nn.init.constant_", framework="all",
           description="every hidden unit identical forever (rank 1)"),
    Scheme("uniform", "uniform", params=(P("low", 0.0), P("high", 1.0)),
           formula="w ~ U[low, high]", reference="torch.nn.init.uniform_ (a, b)",
           framework="pytorch", aliases=("torch.uniform",)),
    Scheme("normal", "normal", params=(P("mean", 0.0), P("std", 1.0, "nonnegative")),
           formula="w ~ N(mean, std^2)", reference="torch.nn.init.normal_",
           framework="pytorch", aliases=("torch.normal",)),
    Scheme("trunc_normal", "truncated_normal",
           params=_MEAN_STD + (P("a", -2.0, "bound", doc="absolute lower bound"),
                               P("b", 2.0, "bound", doc="absolute upper bound")),
           fixed=dict(bounds="absolute", correct=False),
           formula="w ~ N(mean, std^2) truncated to [a, b] (absolute values), no correction",
           reference="torch.nn.init.trunc_normal_", framework="pytorch",
           aliases=("torch.trunc_normal",)),
    Scheme("trunc_normal_std", "truncated_normal",
           params=_MEAN_STD + (P("a", -2.0, "bound", doc="lower bound in std units"),
                               P("b", 2.0, "bound", doc="upper bound in std units")),
           fixed=dict(bounds="std", correct=False),
           formula="w = mean + std * z, z ~ N(0, 1) truncated to [a, b], no correction; "
                   "std=1 is timm's default: pass JAX's 0.01 or Keras's 0.05",
           reference="jax.nn.initializers.truncated_normal, timm trunc_normal_tf_, "
                     "keras.initializers.TruncatedNormal (a=-2, b=2)",
           framework="keras/jax", aliases=("jax.truncated_normal", "keras.truncated_normal",
                                           "timm.trunc_normal_tf")),
    Scheme("trunc_normal_corrected", "truncated_normal",
           params=_MEAN_STD + (P("a", -2.0, "bound", doc="lower bound in units of the draw"),
                               P("b", 2.0, "bound", doc="upper bound in units of the draw")),
           fixed=dict(bounds="std", correct=True),
           formula="w = mean + std * z / sd(z), z ~ N(0, 1) truncated to [a, b]: final std "
                   "exactly std", reference="keras/jax variance_scaling truncated_normal",
           framework="keras/jax"),
    Scheme("xavier_uniform", "variance_scaling", params=(P("gain", 1.0),),
           derive=_torch_xavier("uniform"),
           formula="U[-b, b], b = gain * sqrt(6 / (fan_in + fan_out))",
           reference=f"{_GLOROT}; torch.nn.init.xavier_uniform_", framework="pytorch",
           aliases=("torch.xavier_uniform",)),
    Scheme("xavier_normal", "variance_scaling", params=(P("gain", 1.0),),
           derive=_torch_xavier("normal"),
           formula="N(0, s^2), s = gain * sqrt(2 / (fan_in + fan_out)), untruncated",
           reference=f"{_GLOROT}; torch.nn.init.xavier_normal_", framework="pytorch",
           aliases=("torch.xavier_normal",)),
    Scheme("kaiming_uniform", "variance_scaling", params=_KAIMING_PARAMS,
           derive=_torch_kaiming("uniform"),
           formula="U[-b, b], b = gain * sqrt(3 / fan_mode), gain = "
                   "calculate_gain(nonlinearity, a)",
           reference=f"{_HE}; torch.nn.init.kaiming_uniform_", framework="pytorch",
           aliases=("torch.kaiming_uniform",)),
    Scheme("kaiming_normal", "variance_scaling", params=_KAIMING_PARAMS,
           derive=_torch_kaiming("normal"),
           formula="N(0, s^2), s = gain / sqrt(fan_mode), untruncated",
           reference=f"{_HE}; torch.nn.init.kaiming_normal_", framework="pytorch",
           aliases=("torch.kaiming_normal",)),
    _keras("glorot_uniform", 1.0, "fan_avg", "uniform",
           "U[-b, b], b = sqrt(6 / (fan_in + fan_out))", _GLOROT),
    _keras("glorot_normal", 1.0, "fan_avg", "truncated_normal",
           f"sqrt(2 / (fan_in + fan_out)) * {_TRUNC}", _GLOROT),
    _keras("he_uniform", 2.0, "fan_in", "uniform", "U[-b, b], b = sqrt(6 / fan_in)", _HE),
    _keras("he_normal", 2.0, "fan_in", "truncated_normal",
           f"sqrt(2 / fan_in) * {_TRUNC}", _HE),
    _keras("lecun_uniform", 1.0, "fan_in", "uniform", "U[-b, b], b = sqrt(3 / fan_in)",
           _LECUN),
    _keras("lecun_normal", 1.0, "fan_in", "truncated_normal",
           f"sqrt(1 / fan_in) * {_TRUNC}", _LECUN + "; Klambauer et al. 2017 (SELU)"),
    Scheme("variance_scaling", "variance_scaling",
           params=(P("scale", 1.0, "positive"), P("mode", "fan_in", "choice", MODES),
                   P("distribution", "truncated_normal", "choice", DISTRIBUTIONS)),
           formula="Var[w] = scale / fan(mode); truncated_normal is corrected to that "
                   "variance; normal is untruncated (JAX's reading)",
           reference="jax.nn.initializers.variance_scaling", framework="jax",
           aliases=("jax.variance_scaling",)),
    Scheme("keras_variance_scaling", "variance_scaling",
           params=(P("scale", 1.0, "positive"), P("mode", "fan_in", "choice", _KERAS_MODES),
                   P("distribution", "truncated_normal", "choice", _KERAS_DISTRIBUTIONS)),
           derive=_keras_variance_scaling,
           formula="Var[w] = scale / fan(mode); truncated_normal is corrected to that "
                   "variance; normal means truncated_normal, as in Keras (untruncated_normal "
                   "is not truncated)",
           reference="keras.initializers.VarianceScaling", framework="keras",
           aliases=("keras.variance_scaling",)),
    Scheme("orthogonal", "orthogonal", params=(P("gain", 1.0),),
           formula="gain * Q, Q from the QR of a Gaussian matrix with sign(diag R) = +1 "
                   "(Haar); rows orthonormal if rows <= cols, else columns",
           reference="Saxe et al., ICLR 2014; torch.nn.init.orthogonal_",
           framework="all", aliases=("torch.orthogonal", "keras.orthogonal",
                                     "jax.orthogonal")),
    Scheme("identity", "identity", params=(P("gain", 1.0),),
           formula="gain * I (2-D, ones on the main diagonal)",
           reference="torch.nn.init.eye_, keras.initializers.Identity", framework="all",
           aliases=("eye", "torch.eye", "keras.identity")),
    Scheme("dirac", "dirac", params=(P("groups", 1, "positive_int"),),
           formula="w[g*o + i, i, centre] = 1 for i < min(out/groups, in), centre = k // 2",
           reference="torch.nn.init.dirac_", framework="pytorch", aliases=("torch.dirac",)),
    Scheme("delta_orthogonal", "delta_orthogonal", params=(P("gain", 1.0),),
           formula="orthogonal (in x out) at the kernel position (k - 1) // 2, zero elsewhere; "
                   "needs out >= in",
           reference="Xiao et al., ICML 2018; jax.nn.initializers.delta_orthogonal",
           framework="jax", aliases=("jax.delta_orthogonal",)),
    Scheme("sparse", "sparse",
           params=(P("sparsity", kind="fraction", doc="fraction of each column set to zero"),
                   P("std", 0.01, "nonnegative")),
           formula="N(0, std^2), then ceil(sparsity * rows) zeros in every column, placed by a "
                   "reproducible random permutation",
           reference="Martens, ICML 2010; torch.nn.init.sparse_", framework="pytorch",
           aliases=("torch.sparse",)),
    Scheme("ZerO", "zero",
           formula="out <= in: partial identity; out > in: first rows/columns of "
                   "H_p / sqrt(p), p = 2^ceil(log2 out); conv: at the kernel centre",
           reference="Zhao, Schaefer & Anandkumar, ZerO initialization, TMLR 2022",
           framework="paper", aliases=("zer0", "zero_init"),
           description="deterministic; breaks symmetry without randomness (needs relu'(0)=1); "
                       "rows are distinct while out <= 2^ceil(log2 in), then repeat"),
    # framework presets: the exact default of a layer, weight and bias
    Scheme("torch_linear", "variance_scaling", derive=lambda p, fi, fo: dict(
               scale=calculate_gain("leaky_relu", math.sqrt(5), method="torch") ** 2,
               mode="fan_in", distribution="uniform"),
           formula="kaiming_uniform(a=sqrt(5)) = U[-1/sqrt(fan_in), 1/sqrt(fan_in)]",
           reference="torch.nn.Linear / ConvNd reset_parameters", framework="pytorch",
           aliases=("torch.linear", "torch_conv", "torch.conv"), bias="torch_linear_bias"),
    Scheme("torch_linear_bias", "uniform", derive=_torch_linear_bias, uses_fans=True,
           formula="U[-1/sqrt(fan_in), 1/sqrt(fan_in)], fan_in of the layer's weight "
                   "(pass fan_in= for a 1-D bias)",
           reference="torch.nn.Linear / ConvNd reset_parameters", framework="pytorch",
           aliases=("torch.linear_bias",)),
    Scheme("keras_dense", "variance_scaling",
           fixed=dict(scale=1.0, mode="fan_avg", distribution="uniform"),
           formula="glorot_uniform", reference="keras.layers.Dense defaults",
           framework="keras", aliases=("keras.dense",), bias="keras_dense_bias"),
    Scheme("keras_dense_bias", "constant", fixed=dict(value=0.0), formula="zeros",
           reference="keras.layers.Dense defaults", framework="keras",
           aliases=("keras.dense_bias",)),
    Scheme("flax_dense", "variance_scaling",
           fixed=dict(scale=1.0, mode="fan_in", distribution="truncated_normal"),
           formula="lecun_normal (truncated, corrected)", reference="flax.linen.Dense defaults",
           framework="flax", aliases=("flax.dense",), bias="flax_dense_bias"),
    Scheme("flax_dense_bias", "constant", fixed=dict(value=0.0), formula="zeros",
           reference="flax.linen.Dense defaults", framework="flax",
           aliases=("flax.dense_bias",)),
    Scheme("edge_of_chaos", "variance_scaling", params=_EOC_PARAMS, derive=_eoc_weight,
           formula="N(0, sigma_w*^2 / fan_in), sigma_w*^2 the critical point chi_1 = 1 of the "
                   "mean-field map for (activation, activation_param, sigma_b2); bias "
                   "N(0, sigma_b2)",
           reference="Poole et al., NeurIPS 2016; Schoenholz et al., ICLR 2017",
           framework="paper", bias="edge_of_chaos_bias"),
    Scheme("edge_of_chaos_bias", "normal", params=_EOC_PARAMS,
           derive=_eoc_bias,
           formula="N(0, sigma_b2)", reference="Poole et al., NeurIPS 2016",
           framework="paper"),
)

for _s in BUILTIN:   # the registration step: importing this module fills the registry
    register_scheme(_s)
