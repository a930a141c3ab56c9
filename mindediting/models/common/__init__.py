"""Pieces shared by several models: flow warping, SPyNet, residual blocks, upsamplers."""
