# SPDX-License-Identifier: GPL-2.0
#
# Build cmabuf.ko against a Rust-enabled kernel tree:
#     make KDIR=/path/to/linux ARCH=arm64 LLVM=1
# Drive the virtual board (sets itself up on first use):
#     make run [CMD='...'] [EXTRA=dir] [OUT=dir]     make check     make bench     make demo
# Install on a board's root file system (module + depmod, udev/mdev rule, static cmabufctl):
#     make install INSTALL_MOD_PATH=<rootfs> [KDIR=...]     make uninstall INSTALL_MOD_PATH=<rootfs>
# The real boards' overlays (Documentation/admin-guide/boards.rst), into build/dtbo/:
#     make dtbos
# Debian packages (cmabuf-dkms, cmabuf-tools for arm64) into build/deb/:
#     make deb

KDIR ?=
ARCH ?= arm64
# A tree whose kernel was built with gcc (Debian's stock kernels) takes LLVM= empty; the board's
# own kernels are built with clang/LLVM 19.
ifneq ($(KDIR),)
ifneq ($(shell grep -sx 'CONFIG_CC_IS_GCC=y' $(KDIR)/.config),)
LLVM ?=
endif
endif
LLVM ?= -19
O_BOARD ?= $(CURDIR)/build

ifeq ($(KDIR),)
# No tree given: use (and, on first use, build) the board's cached kernel.
KDIR_BOARD = $(shell board/setup.sh >&2 && board/kernel.sh)
else
KDIR_BOARD = $(KDIR)
endif

KBUILD_ARGS = ARCH=$(ARCH) LLVM=$(LLVM) M=$(CURDIR)

# `make run CMD='...'` runs the command verbatim in the board: make must not expand the `$` in
# it (`$HOME`, `$?`, `$i`) when it passes the variable on.
ifdef CMD
override CMD := $(value CMD)
export CMD
endif

.PHONY: all modules clean rustfmt rustfmtcheck clippy run check bench demo deb dtbos install uninstall \
	cmd-echo kbuild-args

all: modules

modules:
	$(MAKE) -C $(KDIR_BOARD) $(KBUILD_ARGS) modules

clippy:
	$(MAKE) -C $(KDIR_BOARD) $(KBUILD_ARGS) CLIPPY=1 modules

# The kernel's own rustfmt settings (its `rustfmt` targets cover only the tree).
RUSTFMT_ARGS = --edition 2021 --config-path $(KDIR_BOARD)/.rustfmt.toml src/*.rs

rustfmt:
	rustfmt $(RUSTFMT_ARGS)

rustfmtcheck:
	rustfmt --check $(RUSTFMT_ARGS)

clean:
	@if [ -n "$(KDIR)" ]; then $(MAKE) -C $(KDIR) $(KBUILD_ARGS) clean; fi
	rm -rf $(O_BOARD) src/*.o src/*.ko src/*.mod* src/.*.cmd src/modules.order \
		modules.order Module.symvers .*.cmd

run:
	board/board.sh run

check:
	board/board.sh check

bench:
	board/board.sh bench

# Without INSTALL_MOD_PATH this installs into / - only with an explicit KDIR (building on the
# board itself): the default KDIR is the virtual board's kernel, not this machine's.
INSTALL_MOD_PATH ?=
CMABUFCTL ?=
install uninstall:
	$(if $(INSTALL_MOD_PATH)$(KDIR),,$(error make $@ INSTALL_MOD_PATH=<rootfs> (or KDIR=<tree> to use /)))
	KDIR="$(KDIR_BOARD)" ARCH="$(ARCH)" LLVM="$(LLVM)" CMABUFCTL="$(CMABUFCTL)" \
		board/install.sh $@ "$(or $(INSTALL_MOD_PATH),/)"

dtbos:
	board/boards.sh dtbos $(O_BOARD)/dtbo

deb:
	board/deb.sh $(O_BOARD)/deb

# What `make run` would hand the board as CMD, and what kbuild gets (for board/test_makefile.py).
cmd-echo:
	@printf '%s\n' "$$CMD"

kbuild-args:
	@printf '%s\n' "$(KBUILD_ARGS)"

# vivid (videobuf2-dma-contig) captures into exported cmabuf buffers; PNG frames land in DEMO_OUT.
# Then the camera-to-display pipeline (vivid -> cmabuf -> vkms -> writeback -> cmabuf) leaves
# what the display showed as display.png.
DEMO_OUT ?= $(CURDIR)/build/demo
demo:
	OUT=$(DEMO_OUT) CMD='modprobe vivid allocators=1 n_devs=1 node_types=0x1 && cmabufctl capture --video /dev/video0 --frames 4 --out /out && cd /kselftest/cmabuf && CMABUF_FRAME_OUT=/tmp/display.ppm ./cmabuf_drm -t vivid_to_vkms_to_writeback > /tmp/drm.log && cmabufctl png /tmp/display.ppm /out/display.png' board/board.sh run
