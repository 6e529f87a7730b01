//! What runs inside the VM and how it gets there: the guest spec, the static
//! init embedded in `bottle` (built by `build.rs`), the rootfs reader, and the
//! initramfs that packs them with the kernel modules the init loads.
pub mod cpio;
pub mod initramfs;
pub mod layout;
pub mod rootfs;
pub mod spec;
pub mod status;

/// The static guest init, built from `guest/init.rs` by `build.rs`.
pub fn init_binary() -> &'static [u8] {
    include_bytes!(concat!(env!("OUT_DIR"), "/bottle-init"))
}

/// The kernel modules the init loads, by module name: virtio transport and
/// the network device. Modules the kernel has built in are skipped.
pub const MODULES: &[&str] = &[
    "virtio_ring",
    "virtio",
    "virtio_pci_modern_dev",
    "virtio_pci_legacy_dev",
    "virtio_pci",
    "failover",
    "net_failover",
    "virtio_net",
];

/// The modules a guest with a root disk also loads: the disk, its file
/// system and the overlay the guest writes to (dependencies first).
pub const ROOT_MODULES: &[&str] = &["virtio_blk", "libcrc32c", "erofs", "overlay"];

/// The root disk as the guest sees it (the first virtio disk).
pub const ROOT_DEVICE: &str = "/dev/vda";
