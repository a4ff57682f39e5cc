// SPDX-License-Identifier: GPL-2.0

//! The platform driver: binds `"cmabuf,dma-buffer"` nodes.
//!
//! Probe attaches the node's CMA region ([`Region`]), takes the lowest free
//! index `N` ([`crate::index`]) and registers `/dev/cmabufN`. Unbind (and
//! `rmmod`, which unbinds every node) tears down in the opposite order: the
//! misc device first, so no new file can be opened, then the region.
//! Files that are still open keep the [`Shared`] state and see the device as
//! gone.

use crate::{
    index::{
        Index,
        DEVICES, //
    },
    miscdev::Registration,
    region::Region,
};
use core::sync::atomic::{
    AtomicBool,
    Ordering, //
};
use kernel::{
    device::{
        self,
        Core, //
    },
    of,
    platform,
    prelude::*,
    str::CString,
    sync::{
        aref::ARef,
        Arc, //
    }, //
};

kernel::of_device_table!(
    OF_TABLE,
    MODULE_OF_TABLE,
    <CmabufDriver as platform::Driver>::IdInfo,
    [(of::DeviceId::new(c"cmabuf,dma-buffer"), ())]
);

/// What the open files of one bound node share with it; outlives the binding while files are
/// open.
pub(crate) struct Shared {
    /// The platform device.
    dev: ARef<device::Device>,
    /// `N` of `/dev/cmabufN`.
    index: u32,
    /// Whether the node is still bound; cleared at unbind.
    bound: AtomicBool,
}

impl Shared {
    /// The platform device.
    pub(crate) fn dev(&self) -> &device::Device {
        &self.dev
    }

    /// `N` of `/dev/cmabufN`.
    pub(crate) fn index(&self) -> u32 {
        self.index
    }

    /// Whether the node is still bound to the driver.
    pub(crate) fn is_bound(&self) -> bool {
        self.bound.load(Ordering::Acquire)
    }
}

/// One bound node. Fields drop in declaration order: the misc device goes first.
#[pin_data]
pub(crate) struct CmabufDriver {
    /// `/dev/cmabufN`.
    #[pin]
    misc: Registration,
    /// State shared with open files.
    shared: Arc<Shared>,
    /// The node's CMA region, attached to the device.
    region: Region,
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
            region: Region::attach(pdev)?,
            index: DEVICES.take()?,
            shared: Arc::new(
                Shared {
                    dev: dev.into(),
                    index: index.get(),
                    bound: AtomicBool::new(true),
                },
                GFP_KERNEL
            )?,
            misc <- Registration::register(
                CString::try_from_fmt(fmt!("cmabuf{}", index.get()))?,
                shared.clone()
            ),
        })
        .pin_chain(move |this| {
            dev_info!(
                dev,
                "/dev/cmabuf{}: region {} base {:#x} size {} KiB\n",
                this.shared.index,
                this.region.name(),
                this.region.base(),
                this.region.size() / 1024
            );
            Ok(())
        })
    }

    fn unbind<'bound>(pdev: &'bound platform::Device<Core<'_>>, this: Pin<&Self>) {
        this.shared.bound.store(false, Ordering::Release);
        dev_info!(pdev.as_ref(), "/dev/cmabuf{}: unbound\n", this.shared.index);
    }
}
