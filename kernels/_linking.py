"""How fastinit's kernels are linked: a helper's machine code is made once, in its own library.

Numba links a copy of every helper a kernel calls into the kernel's library, then optimises the
whole module at O3 and generates machine code for all of it, copies included: forward and
backward were compiled in their own libraries, again in train_epoch's and again in evaluate's,
and every helper below them once per library above it. A fastinit helper's copy in a caller is
now ``available_externally``: LLVM still sees its body (and inlines it where it would have) but
emits no code for it, and a call that stays a call goes to the helper's own library. A kernel
compiled in this process called the helper's own library already (its copy was weak); the
same bits either way (tests/test_golden.py). A cold float32 train() compiled in 30.5 s instead
of 46.2 s (``NUMBA_CACHE_DIR=$(mktemp -d) python bench/compile_times.py train``, one run each
in the same minutes; train_epoch's own share 6.3 s -> 2.5 s, evaluate's 3.7 s -> 1.2 s).

A kernel loaded from the on-disk cache is then object code calling symbols of other libraries,
so its cache entry also records what it calls (``needs``: symbol, module, function, argument
types), and loading it first loads, or compiles, each of those. Numba names a symbol with a
number it counts per process, so a helper compiled again by another process (its cache entry
deleted, say) may carry another name: a kernel whose needs are not all defined after that is
compiled again, not loaded (its calls would jump to nothing).

Only a fastinit kernel's own library is changed (the one named as the kernel whose compile is
innermost on this thread): Numba's own functions compiled on the way keep Numba's linking.

A helper compiled to be inlined (``forceinline``) keeps its copies, and skips the module passes
on its own library: its code only ever runs inlined into its callers, optimised there (a leaf
five deep was optimised in every library on the way). Every other helper keeps them: its own
library's code is the code its callers run.
"""
import importlib
import threading

from llvmlite import binding as ll
from numba.core import codegen, sigutils

_owners = threading.local()      # per thread: (inlined?, name) of each fastinit compile under way
_symbols = {}                    # symbol -> (module, function, argument types): callable helpers
_dispatchers = {}                # (module, function) -> its dispatcher, for loading a need
_EXTERNAL = ll.Linkage.available_externally


def track(dispatcher):
    """Whose compile is under way (for ``_optimize_final_module``), and, once compiled or
    loaded, the symbol of each signature of a helper that may be called (not inlined)."""
    compile_ = dispatcher.compile
    inlined = bool(dispatcher.targetoptions.get("forceinline"))
    where = (dispatcher.py_func.__module__, dispatcher.py_func.__qualname__)
    _dispatchers.setdefault(where, dispatcher)

    def compile(sig):
        stack = _owners.__dict__.setdefault("stack", [])
        stack.append((inlined, where[1]))
        try:
            entry = compile_(sig)
        finally:
            stack.pop()
        args = tuple(sigutils.normalize_signature(sig)[0])
        cres = dispatcher.overloads.get(args)
        if cres is not None and not inlined:
            _symbols.setdefault(cres.fndesc.mangled_name, (*where, args))
        return entry

    dispatcher.compile = compile
    return dispatcher


_optimize_module = getattr(codegen.CPUCodeLibrary, "_optimize_final_module", None)


def _optimize_final_module(library):
    """Numba's whole-module optimisation of a library (O3 twice) with every fastinit helper's
    copy available_externally, but none for the own library of a helper compiled to be inlined;
    records what the library calls in other libraries (see the module docstring)."""
    stack = getattr(_owners, "stack", None)
    if not stack or library.name != stack[-1][1]:  # not a fastinit kernel's own: Numba's own
        _optimize_module(library)
        return
    module = library._final_module
    for fn in module.functions:
        if fn.name in _symbols and fn.linkage == ll.Linkage.linkonce_odr:
            fn.linkage = _EXTERNAL
    if not stack[-1][0]:
        _optimize_module(library)
    library.fastinit_needs = [(fn.name, *_symbols[fn.name]) for fn in library._final_module
                              .functions if fn.name in _symbols
                              and (fn.is_declaration or fn.linkage == _EXTERNAL)]


if _optimize_module is not None:
    codegen.CPUCodeLibrary._optimize_final_module = _optimize_final_module

# LLVM tunes Intel's AVX-512 server CPUs (Skylake-SP to Emerald Rapids) to vectorise loops 256
# bits wide, to keep the first of them from lowering their clocks; the GEMM writes its 512-bit
# vectors itself, but the loops LLVM vectorises (the samplers' Philox and Box-Muller, the
# elementwise passes, the optimizer) ran at half width. A fastinit kernel's functions ask for
# full width (clang's -mprefer-vector-width=512); Numba's own and a user's code keep LLVM's
# choice, whatever was compiled first. Same bits: with no fast-math flags LLVM never reorders
# floating-point arithmetic, so the vector width cannot change a value (Numba built with Intel's
# SVML would be the exception: its vector exp and log may differ from libm's by an ulp, at any
# width, which tests/test_golden would show). Other CPUs ignore it.
FULL_WIDTH = '"prefer-vector-width"="512"'
_add_ir_module = codegen.CPUCodeLibrary.add_ir_module
_PARFOR = "__numba_parfor_gufunc"      # a prange body's library, made inside its kernel's compile


def _add_full_width(library, ir_module):
    """Numba's add_ir_module, a fastinit kernel's functions (its prange bodies' too) asking for
    FULL_WIDTH first."""
    stack = getattr(_owners, "stack", None)
    if stack and (library.name == stack[-1][1] or library.name.startswith(_PARFOR)):
        for fn in ir_module.functions:
            if fn.blocks:                       # a definition (an attribute set takes only
                set.add(fn.attributes, FULL_WIDTH)   # LLVM's named ones: added as a string)
    _add_ir_module(library, ir_module)


codegen.CPUCodeLibrary.add_ir_module = _add_full_width


def _load(needs, engine) -> bool:
    """Load (or compile) each helper in ``needs`` that this process lacks; True when every
    symbol a cached kernel calls is then defined. False, not an error, when one cannot be
    (its module gone, say): the kernel then compiles again. A need already being loaded up the
    stack (helpers calling each other) is not loaded twice."""
    loading = _owners.__dict__.setdefault("loading", set())
    for name, module, qualname, args in needs:
        if engine.is_symbol_defined(name) or name in loading:
            continue
        loading.add(name)
        try:
            importlib.import_module(module)
            dispatcher = _dispatchers.get((module, qualname))
            if dispatcher is not None:
                dispatcher.compile(args)
        except Exception:
            return False
        finally:
            loading.discard(name)
    return all(engine.is_symbol_defined(name) for name, *_ in needs)


def cache_needs(dispatcher):
    """The dispatcher's cache entries carry what each calls in other libraries, and are loaded
    only once those are (see the module docstring)."""
    impl = getattr(getattr(dispatcher, "_cache", None), "_impl", None)
    if impl is None or not hasattr(impl, "reduce"):
        return dispatcher
    reduce_, rebuild_ = impl.reduce, impl.rebuild

    def reduce(cres):
        return getattr(cres.library, "fastinit_needs", []), reduce_(cres)

    def rebuild(target_context, payload):
        needs, data = payload
        if not _load(needs, target_context.codegen()._engine):
            return None
        cres = rebuild_(target_context, data)
        cres.library.fastinit_needs = needs
        return cres

    impl.reduce, impl.rebuild = reduce, rebuild
    return dispatcher
