//! VaultDB storage backend on a local directory (implemented with the VaultDb client).
