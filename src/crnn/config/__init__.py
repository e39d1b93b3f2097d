"""Typed configuration that accepts PaddleOCR's CRNN YAML files.

``schema``: the sections as dataclasses. ``loader``: YAML, ``_BASE_`` merging and ``-o`` overrides.
``typed``: dict -> dataclasses, every key and type checked. ``checks``: names against the component
tables (``crnn.registry``), numbers, and the keys accepted without effect (``checks.NO_EFFECT``).
"""

from crnn.config.loader import BASE_KEY, config_from_dict, load_config, parse_overrides
from crnn.config.schema import (
    ArchitectureConfig,
    BackboneConfig,
    ComponentConfig,
    Config,
    ConfigError,
    DatasetConfig,
    DistillConfig,
    GlobalConfig,
    HeadConfig,
    LoaderConfig,
    LossConfig,
    LRConfig,
    MetricConfig,
    NeckConfig,
    OptimizerConfig,
    PostProcessConfig,
    RecAugConfig,
    RegularizerConfig,
    SplitConfig,
    TransformsConfig,
)

__all__ = ["BASE_KEY", "ArchitectureConfig", "BackboneConfig", "ComponentConfig", "Config", "ConfigError",
           "DatasetConfig", "DistillConfig",
           "GlobalConfig", "HeadConfig", "LRConfig", "LoaderConfig", "LossConfig", "MetricConfig",
           "NeckConfig", "OptimizerConfig", "PostProcessConfig", "RecAugConfig", "RegularizerConfig", "SplitConfig",
           "TransformsConfig", "config_from_dict", "load_config", "parse_overrides"]
