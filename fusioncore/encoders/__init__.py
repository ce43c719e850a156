"""Modality encoders: the image branch of MM-dynamics, its U-Nets and the SmallCNN."""

from .image_branch import ImageBranch, SmpImageEncoder, patch_average
from .smallcnn import SmallCNN
from .unet import PaperUNet, build_smp_unet

__all__ = ["ImageBranch", "PaperUNet", "SmallCNN", "SmpImageEncoder", "build_smp_unet", "patch_average"]
