"""Recipes chosen from the data and the device rather than named: ``auto``."""
from contraclust.recipes.auto import DataProfile, DeviceProfile, auto_recipe

__all__ = ["DataProfile", "DeviceProfile", "auto_recipe"]
