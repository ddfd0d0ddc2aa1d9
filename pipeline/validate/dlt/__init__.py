"""DLT templates: reading the registered ones (files.py) and matching messages (matcher.py)."""

from pipeline.validate.dlt.files import load_dlt_templates
from pipeline.validate.dlt.matcher import DEFAULT_VAR_MAX, DltMatcher, DltTemplate

__all__ = ["DEFAULT_VAR_MAX", "DltMatcher", "DltTemplate", "load_dlt_templates"]
