src/.cmabuf.o.d: /root/.cache/cmabuf/kernel/7.2.13-1-perf-dd08c7e419a883de/.clippy.toml src/cmabuf.rs src/buffer.rs src/debugfs.rs src/device.rs src/dmamem.rs src/driver.rs src/file.rs src/index.rs src/miscdev.rs src/policy.rs src/region.rs src/uapi.rs src/validate.rs src/vma.rs src/uapi_generated.rs /root/.cache/cmabuf/kernel/7.2.13-1-perf-dd08c7e419a883de/rust/libcore.rmeta /root/.cache/cmabuf/kernel/7.2.13-1-perf-dd08c7e419a883de/rust/libkernel.rmeta /root/.cache/cmabuf/kernel/7.2.13-1-perf-dd08c7e419a883de/rust/libffi.rmeta /root/.cache/cmabuf/kernel/7.2.13-1-perf-dd08c7e419a883de/rust/libcompiler_builtins.rmeta /root/.cache/cmabuf/kernel/7.2.13-1-perf-dd08c7e419a883de/rust/libpin_init.rmeta /root/.cache/cmabuf/kernel/7.2.13-1-perf-dd08c7e419a883de/rust/libpin_init_internal.so /root/.cache/cmabuf/kernel/7.2.13-1-perf-dd08c7e419a883de/rust/libmacros.so /root/.cache/cmabuf/kernel/7.2.13-1-perf-dd08c7e419a883de/rust/libbuild_error.rmeta /root/.cache/cmabuf/kernel/7.2.13-1-perf-dd08c7e419a883de/rust/libbindings.rmeta /root/.cache/cmabuf/kernel/7.2.13-1-perf-dd08c7e419a883de/rust/libzerocopy.rmeta /root/.cache/cmabuf/kernel/7.2.13-1-perf-dd08c7e419a883de/rust/libzerocopy_derive.so /root/.cache/cmabuf/kernel/7.2.13-1-perf-dd08c7e419a883de/rust/libuapi.rmeta

src/cmabuf.o: /root/.cache/cmabuf/kernel/7.2.13-1-perf-dd08c7e419a883de/.clippy.toml src/cmabuf.rs src/buffer.rs src/debugfs.rs src/device.rs src/dmamem.rs src/driver.rs src/file.rs src/index.rs src/miscdev.rs src/policy.rs src/region.rs src/uapi.rs src/validate.rs src/vma.rs src/uapi_generated.rs /root/.cache/cmabuf/kernel/7.2.13-1-perf-dd08c7e419a883de/rust/libcore.rmeta /root/.cache/cmabuf/kernel/7.2.13-1-perf-dd08c7e419a883de/rust/libkernel.rmeta /root/.cache/cmabuf/kernel/7.2.13-1-perf-dd08c7e419a883de/rust/libffi.rmeta /root/.cache/cmabuf/kernel/7.2.13-1-perf-dd08c7e419a883de/rust/libcompiler_builtins.rmeta /root/.cache/cmabuf/kernel/7.2.13-1-perf-dd08c7e419a883de/rust/libpin_init.rmeta /root/.cache/cmabuf/kernel/7.2.13-1-perf-dd08c7e419a883de/rust/libpin_init_internal.so /root/.cache/cmabuf/kernel/7.2.13-1-perf-dd08c7e419a883de/rust/libmacros.so /root/.cache/cmabuf/kernel/7.2.13-1-perf-dd08c7e419a883de/rust/libbuild_error.rmeta /root/.cache/cmabuf/kernel/7.2.13-1-perf-dd08c7e419a883de/rust/libbindings.rmeta /root/.cache/cmabuf/kernel/7.2.13-1-perf-dd08c7e419a883de/rust/libzerocopy.rmeta /root/.cache/cmabuf/kernel/7.2.13-1-perf-dd08c7e419a883de/rust/libzerocopy_derive.so /root/.cache/cmabuf/kernel/7.2.13-1-perf-dd08c7e419a883de/rust/libuapi.rmeta

/root/.cache/cmabuf/kernel/7.2.13-1-perf-dd08c7e419a883de/.clippy.toml:
src/cmabuf.rs:
src/buffer.rs:
src/debugfs.rs:
src/device.rs:
src/dmamem.rs:
src/driver.rs:
src/file.rs:
src/index.rs:
src/miscdev.rs:
src/policy.rs:
src/region.rs:
src/uapi.rs:
src/validate.rs:
src/vma.rs:
src/uapi_generated.rs:
/root/.cache/cmabuf/kernel/7.2.13-1-perf-dd08c7e419a883de/rust/libcore.rmeta:
/root/.cache/cmabuf/kernel/7.2.13-1-perf-dd08c7e419a883de/rust/libkernel.rmeta:
/root/.cache/cmabuf/kernel/7.2.13-1-perf-dd08c7e419a883de/rust/libffi.rmeta:
/root/.cache/cmabuf/kernel/7.2.13-1-perf-dd08c7e419a883de/rust/libcompiler_builtins.rmeta:
/root/.cache/cmabuf/kernel/7.2.13-1-perf-dd08c7e419a883de/rust/libpin_init.rmeta:
/root/.cache/cmabuf/kernel/7.2.13-1-perf-dd08c7e419a883de/rust/libpin_init_internal.so:
/root/.cache/cmabuf/kernel/7.2.13-1-perf-dd08c7e419a883de/rust/libmacros.so:
/root/.cache/cmabuf/kernel/7.2.13-1-perf-dd08c7e419a883de/rust/libbuild_error.rmeta:
/root/.cache/cmabuf/kernel/7.2.13-1-perf-dd08c7e419a883de/rust/libbindings.rmeta:
/root/.cache/cmabuf/kernel/7.2.13-1-perf-dd08c7e419a883de/rust/libzerocopy.rmeta:
/root/.cache/cmabuf/kernel/7.2.13-1-perf-dd08c7e419a883de/rust/libzerocopy_derive.so:
/root/.cache/cmabuf/kernel/7.2.13-1-perf-dd08c7e419a883de/rust/libuapi.rmeta:

# env-dep:CLIPPY_ARGS
# env-dep:CLIPPY_CONF_DIR=/root/.cache/cmabuf/kernel/7.2.13-1-perf-dd08c7e419a883de
