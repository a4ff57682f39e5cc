src/.cmabuf.o.d: /root/.cache/cmabuf/kernel/7.2.13-1-debug-21ccdb90e40cb2cd/.clippy.toml src/cmabuf.rs src/account.rs src/buffer.rs src/compat.rs src/debugfs.rs src/device.rs src/dmabuf.rs src/dmamem.rs src/dmem.rs src/driver.rs src/file.rs src/fops.rs src/held.rs src/index.rs src/miscdev.rs src/policy.rs src/region.rs src/uapi.rs src/validate.rs src/vma.rs src/uapi_generated.rs /root/.cache/cmabuf/kernel/7.2.13-1-debug-21ccdb90e40cb2cd/rust/libcore.rmeta /root/.cache/cmabuf/kernel/7.2.13-1-debug-21ccdb90e40cb2cd/rust/libkernel.rmeta /root/.cache/cmabuf/kernel/7.2.13-1-debug-21ccdb90e40cb2cd/rust/libffi.rmeta /root/.cache/cmabuf/kernel/7.2.13-1-debug-21ccdb90e40cb2cd/rust/libcompiler_builtins.rmeta /root/.cache/cmabuf/kernel/7.2.13-1-debug-21ccdb90e40cb2cd/rust/libpin_init.rmeta /root/.cache/cmabuf/kernel/7.2.13-1-debug-21ccdb90e40cb2cd/rust/libpin_init_internal.so /root/.cache/cmabuf/kernel/7.2.13-1-debug-21ccdb90e40cb2cd/rust/libmacros.so /root/.cache/cmabuf/kernel/7.2.13-1-debug-21ccdb90e40cb2cd/rust/libbuild_error.rmeta /root/.cache/cmabuf/kernel/7.2.13-1-debug-21ccdb90e40cb2cd/rust/libbindings.rmeta /root/.cache/cmabuf/kernel/7.2.13-1-debug-21ccdb90e40cb2cd/rust/libzerocopy.rmeta /root/.cache/cmabuf/kernel/7.2.13-1-debug-21ccdb90e40cb2cd/rust/libzerocopy_derive.so /root/.cache/cmabuf/kernel/7.2.13-1-debug-21ccdb90e40cb2cd/rust/libuapi.rmeta

src/cmabuf.o: /root/.cache/cmabuf/kernel/7.2.13-1-debug-21ccdb90e40cb2cd/.clippy.toml src/cmabuf.rs src/account.rs src/buffer.rs src/compat.rs src/debugfs.rs src/device.rs src/dmabuf.rs src/dmamem.rs src/dmem.rs src/driver.rs src/file.rs src/fops.rs src/held.rs src/index.rs src/miscdev.rs src/policy.rs src/region.rs src/uapi.rs src/validate.rs src/vma.rs src/uapi_generated.rs /root/.cache/cmabuf/kernel/7.2.13-1-debug-21ccdb90e40cb2cd/rust/libcore.rmeta /root/.cache/cmabuf/kernel/7.2.13-1-debug-21ccdb90e40cb2cd/rust/libkernel.rmeta /root/.cache/cmabuf/kernel/7.2.13-1-debug-21ccdb90e40cb2cd/rust/libffi.rmeta /root/.cache/cmabuf/kernel/7.2.13-1-debug-21ccdb90e40cb2cd/rust/libcompiler_builtins.rmeta /root/.cache/cmabuf/kernel/7.2.13-1-debug-21ccdb90e40cb2cd/rust/libpin_init.rmeta /root/.cache/cmabuf/kernel/7.2.13-1-debug-21ccdb90e40cb2cd/rust/libpin_init_internal.so /root/.cache/cmabuf/kernel/7.2.13-1-debug-21ccdb90e40cb2cd/rust/libmacros.so /root/.cache/cmabuf/kernel/7.2.13-1-debug-21ccdb90e40cb2cd/rust/libbuild_error.rmeta /root/.cache/cmabuf/kernel/7.2.13-1-debug-21ccdb90e40cb2cd/rust/libbindings.rmeta /root/.cache/cmabuf/kernel/7.2.13-1-debug-21ccdb90e40cb2cd/rust/libzerocopy.rmeta /root/.cache/cmabuf/kernel/7.2.13-1-debug-21ccdb90e40cb2cd/rust/libzerocopy_derive.so /root/.cache/cmabuf/kernel/7.2.13-1-debug-21ccdb90e40cb2cd/rust/libuapi.rmeta

/root/.cache/cmabuf/kernel/7.2.13-1-debug-21ccdb90e40cb2cd/.clippy.toml:
src/cmabuf.rs:
src/account.rs:
src/buffer.rs:
src/compat.rs:
src/debugfs.rs:
src/device.rs:
src/dmabuf.rs:
src/dmamem.rs:
src/dmem.rs:
src/driver.rs:
src/file.rs:
src/fops.rs:
src/held.rs:
src/index.rs:
src/miscdev.rs:
src/policy.rs:
src/region.rs:
src/uapi.rs:
src/validate.rs:
src/vma.rs:
src/uapi_generated.rs:
/root/.cache/cmabuf/kernel/7.2.13-1-debug-21ccdb90e40cb2cd/rust/libcore.rmeta:
/root/.cache/cmabuf/kernel/7.2.13-1-debug-21ccdb90e40cb2cd/rust/libkernel.rmeta:
/root/.cache/cmabuf/kernel/7.2.13-1-debug-21ccdb90e40cb2cd/rust/libffi.rmeta:
/root/.cache/cmabuf/kernel/7.2.13-1-debug-21ccdb90e40cb2cd/rust/libcompiler_builtins.rmeta:
/root/.cache/cmabuf/kernel/7.2.13-1-debug-21ccdb90e40cb2cd/rust/libpin_init.rmeta:
/root/.cache/cmabuf/kernel/7.2.13-1-debug-21ccdb90e40cb2cd/rust/libpin_init_internal.so:
/root/.cache/cmabuf/kernel/7.2.13-1-debug-21ccdb90e40cb2cd/rust/libmacros.so:
/root/.cache/cmabuf/kernel/7.2.13-1-debug-21ccdb90e40cb2cd/rust/libbuild_error.rmeta:
/root/.cache/cmabuf/kernel/7.2.13-1-debug-21ccdb90e40cb2cd/rust/libbindings.rmeta:
/root/.cache/cmabuf/kernel/7.2.13-1-debug-21ccdb90e40cb2cd/rust/libzerocopy.rmeta:
/root/.cache/cmabuf/kernel/7.2.13-1-debug-21ccdb90e40cb2cd/rust/libzerocopy_derive.so:
/root/.cache/cmabuf/kernel/7.2.13-1-debug-21ccdb90e40cb2cd/rust/libuapi.rmeta:

# env-dep:CLIPPY_ARGS
# env-dep:CLIPPY_CONF_DIR=/root/.cache/cmabuf/kernel/7.2.13-1-debug-21ccdb90e40cb2cd
