// SPDX-License-Identifier: GPL-2.0

//! One open file of `/dev/cmabufN`.

use crate::{
    driver::Shared,
    miscdev::Registration, //
};
use kernel::{
    fs::File,
    miscdevice::{
        MiscDevice,
        MiscDeviceRegistration, //
    },
    prelude::*,
    sync::Arc, //
};

/// The private data of an open `/dev/cmabufN`.
pub(crate) struct CmabufFile {
    /// The bound node this file was opened on.
    shared: Arc<Shared>,
}

#[vtable]
impl MiscDevice for CmabufFile {
    type Ptr = KBox<Self>;

    fn open(_file: &File, misc: &MiscDeviceRegistration<Self>) -> Result<KBox<Self>> {
        let shared = Registration::shared_of(misc);
        if !shared.is_bound() {
            return Err(ENODEV);
        }
        dev_dbg!(shared.dev(), "cmabuf{}: open\n", shared.index());
        Ok(KBox::new(Self { shared }, GFP_KERNEL)?)
    }

    fn release(this: KBox<Self>, _file: &File) {
        dev_dbg!(
            this.shared.dev(),
            "cmabuf{}: release\n",
            this.shared.index()
        );
    }
}
