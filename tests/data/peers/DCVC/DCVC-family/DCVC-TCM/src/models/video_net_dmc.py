# A stand-in for microsoft/DCVC's DCVC-TCM video_net_dmc.py with the same entry point (DMC, forward_one_frame,
# decompress) whose import fails as a checkout with a missing dependency does.
import a_package_that_is_not_installed  # noqa: F401
