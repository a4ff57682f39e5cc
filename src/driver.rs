// SPDX-License-Identifier: GPL-2.0

//! The platform driver: binds `"cmabuf,dma-buffer"` nodes.
//!
//! Probe attaches the node's CMA region ([`Region`]: a memory device of
//! cmabuf's own, or the one an earlier binding left while its buffers live),
//! takes the lowest free index `N` ([`crate::index`]) and registers
//! `/dev/cmabufN`. Unbind (and `rmmod`, which unbinds every node) stops new
//! work ([`Shared::unbind`], which waits for nothing), then the misc device
//! goes, so no new file can be opened. Files that are still open keep the
//! [`Shared`] state and see the device as gone (`ENODEV`, but for freeing
//! handles); buffers keep their memory, and the region, until their last
//! user lets go.

use crate::{
    device::Shared,
    file::CmabufFile,
    heap_name::HeapName,
    index::{
        Index,
        DEVICES, //
    },
    miscdev::Registration,
    region::Region,
};
use kernel::{
    debugfs::{
        self,
        Dir, //
    },
    device::{
        self,
        Core, //
    },
    of,
    platform,
    prelude::*,
    str::CString,
    sync::Arc, //
};

crate::compat::of_table!(
    OF_TABLE,
    <CmabufDriver as platform::Driver>::IdInfo,
    [(of::DeviceId::new(c"cmabuf,dma-buffer"), ())]
);

/// One bound node. Fields drop in declaration order: the misc device goes first.
#[pin_data]
pub(crate) struct CmabufDriver {
    /// `/dev/cmabufN`.
    #[pin]
    misc: Registration,
    /// `/sys/kernel/debug/cmabuf/cmabufN`.
    #[pin]
    _stats: debugfs::File<Arc<Shared>>,
    /// The debugfs directory, and the file's name.
    _debugfs: (Dir, CString),
    /// State shared with open files; holds the region.
    shared: Arc<Shared>,
    /// The dma-heap name it is published under (given back after the misc device went).
    heap_name: HeapName,
    /// `N`, given back last.
    index: Index<'static>,
}

impl platform::Driver for CmabufDriver {
    type IdInfo = ();
    type Data<'bound> = Self;
    const OF_ID_TABLE: Option<of::IdTable<Self::IdInfo>> = Some(&OF_TABLE);

    fn probe<'bound>(
        pdev: &'bound platform::Device<Core<'_>>,
        _info: Option<&'bound Self::IdInfo>,
    ) -> impl PinInit<Self, Error> + 'bound {
        let dev: &device::Device<Core<'_>> = pdev.as_ref();
        try_pin_init!(Self {
            index: match crate::region::alias_index(dev) {
                Some(n) => DEVICES.take_at(n)?,
                None => DEVICES.take_from(crate::region::first_unaliased_index())?,
            },
            shared: Shared::new(dev, index.get(), Region::attach(pdev)?)?,
            heap_name: HeapName::choose(dev, index.get())?,
            _debugfs: (
                crate::debugfs::root()?,
                CString::try_from_fmt(fmt!("cmabuf{}", index.get()))?
            ),
            _stats <- _debugfs.0.read_callback_file(
                &_debugfs.1,
                shared.clone(),
                &crate::debugfs::render
            ),
            misc <- Registration::register::<CmabufFile>(
                CString::try_from_fmt(fmt!("cmabuf{}", index.get()))?,
                CString::try_from(heap_name.name())?,
                shared.clone(),
                crate::fops::fops()
            ),
        })
        .pin_chain(move |this| {
            dev_info!(
                dev,
                "/dev/cmabuf{}: region {} base {:#x} size {} KiB, dma-heap name {}\n",
                this.shared.index(),
                this.shared.region_name(),
                this.shared.region_base(),
                this.shared.region_size() / 1024,
                this.heap_name.name()
            );
            Ok(())
        })
    }

    fn unbind<'bound>(pdev: &'bound platform::Device<Core<'_>>, this: Pin<&Self>) {
        // Stop new work; buffers keep their memory until their users let go.
        this.shared.unbind();
        dev_info!(
            pdev.as_ref(),
            "/dev/cmabuf{}: unbound\n",
            this.shared.index()
        );
    }
}
