// SPDX-License-Identifier: GPL-2.0

//! The dma-heap name a bound node is published under.
//!
//! Camera stacks open fixed names in `/dev/dma_heap/` (libcamera
//! `linux,cma`, then `reserved` and `system`; rpicam-apps `vidbuf_cached`,
//! then `linux,cma`). A node's `cmabuf,dma-heap-name` property names the one
//! it is published under; without it, or when the name is unusable or taken,
//! the name is `cmabufN`. The driver claims the name module-wide, so that two
//! nodes never publish one name: the first node bound keeps it, a later one
//! keeps its own default name and says so in the log. The name is the misc
//! device's sysfs attribute `heap_name`; the udev and mdev rules link
//! `/dev/dma_heap/<name>` to `/dev/cmabufN` (and leave alone a node the
//! kernel's own dma-heap framework made under that name).

use crate::validate;
use kernel::{
    device,
    prelude::*,
    str::CString, //
};

/// A name claimed by a bound node.
struct Claim {
    /// The name.
    name: CString,
    /// The node's `N`.
    index: u32,
}

kernel::sync::global_lock! {
    // SAFETY: `Registry::init()` initialises it in module init, before the driver is registered.
    unsafe(uninit) static CLAIMS: Mutex<KVec<Claim>> = KVec::new();
}

/// Owner of the module's list of claimed names, from module init to module exit.
pub(crate) struct Registry;

impl Registry {
    /// Initialises the list.
    pub(crate) fn init() -> Self {
        // SAFETY: Called once, in module init, before any other use.
        unsafe { CLAIMS.init() };
        Self
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // Every node was unbound (and gave its name back) before: only the storage is left.
        *CLAIMS.lock() = KVec::new();
    }
}

/// The name node `index` is published under; a claimed name is given back when this drops.
pub(crate) struct HeapName {
    /// The name.
    name: CString,
    /// Whether it is a claimed name (not the default, which is the node's by its index).
    claimed: bool,
}

impl HeapName {
    /// The name for node `index` of `dev`: its `cmabuf,dma-heap-name` if that is a usable name
    /// no other node holds, else `cmabufN` (saying why in the log).
    pub(crate) fn choose(dev: &device::Device, index: u32) -> Result<Self> {
        let default = || -> Result<Self> {
            Ok(Self {
                name: CString::try_from_fmt(fmt!("cmabuf{index}"))?,
                claimed: false,
            })
        };
        let asked = dev.fwnode().and_then(|node| {
            node.property_read::<CString>(c"cmabuf,dma-heap-name")
                .optional()
        });
        let Some(asked) = asked else {
            return default();
        };
        if !validate::heap_name_ok(asked.to_bytes(), index) {
            dev_warn!(
                dev,
                "cmabuf,dma-heap-name \"{}\" is not a usable name (1-{} letters, digits or \
                 ,._-@+; not another node's cmabufN): published as cmabuf{}\n",
                asked.to_str().unwrap_or("(not UTF-8)"),
                validate::HEAP_NAME_MAX,
                index
            );
            return default();
        }
        let mut claims = CLAIMS.lock();
        if let Some(c) = claims
            .iter()
            .find(|c| c.name.to_bytes() == asked.to_bytes())
        {
            dev_warn!(
                dev,
                "dma-heap name {} is already published by /dev/cmabuf{}: /dev/cmabuf{} keeps \
                 its default name cmabuf{}\n",
                asked.to_str().unwrap_or("(not UTF-8)"),
                c.index,
                index,
                index
            );
            drop(claims);
            return default();
        }
        claims.push(
            Claim {
                name: CString::try_from(&*asked)?,
                index,
            },
            GFP_KERNEL,
        )?;
        Ok(Self {
            name: asked,
            claimed: true,
        })
    }

    /// The name.
    pub(crate) fn name(&self) -> &CStr {
        &self.name
    }
}

impl Drop for HeapName {
    fn drop(&mut self) {
        if self.claimed {
            CLAIMS
                .lock()
                .retain(|c| c.name.to_bytes() != self.name.to_bytes());
        }
    }
}
