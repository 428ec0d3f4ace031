"""Storage URLs to Optuna storages: validation, reachability checks and password masking."""

from storage.rdb import open_storage
from storage.urls import check_url, mask_secrets, mask_url

__all__ = ["check_url", "mask_secrets", "mask_url", "open_storage"]
