//! Device recognition at sign-in (an NIST 800-63B-style account notice): a browser keeps a
//! long-lived device cookie; a sign-in that presents one this user has signed in with before is
//! routine, anything else (no cookie, a forged or foreign one, the first sign-in ever) is a new
//! device, and the user is told by mail. The first sign-in is notified too: it is simple, and a
//! stranger's first use of a stolen password is exactly the sign-in worth hearing about.

use super::Portal;
use crate::audit::{Action, Actor, NewEvent, RequestMeta, Target};
use crate::authn::device::DeviceSecret;
use crate::error::Result;
use crate::model::{KnownDevice, User};
use crate::ports::Tx;
use time::OffsetDateTime;

/// The device a sign-in came from.
#[derive(Clone, Debug)]
pub struct DeviceOutcome {
    /// The cookie the browser should keep: the one it sent, or a new one.
    pub secret: DeviceSecret,
    /// True when the device was not known and the user has been notified.
    pub new: bool,
}

impl Portal {
    /// Recognise the device of a successful sign-in, in the sign-in's transaction. A known
    /// device is touched; an unknown one is stored (by hash), audited as `auth.new_device`,
    /// and gets a notice queued for the user.
    pub(super) async fn recognise_device(
        &self,
        tx: &mut dyn Tx,
        user: &User,
        presented: Option<&DeviceSecret>,
        meta: &RequestMeta,
        now: OffsetDateTime,
    ) -> Result<DeviceOutcome> {
        let (ip, ua) = (meta.ip.as_deref(), meta.user_agent.as_deref());
        if let Some(d) = presented
            && tx.devices().touch_known_device(user.tenant_id, user.id, &d.hash(), now, ip, ua).await?
        {
            return Ok(DeviceOutcome { secret: d.clone(), new: false });
        }
        let secret = DeviceSecret::generate()?;
        tx.devices()
            .insert_known_device(&KnownDevice {
                tenant_id: user.tenant_id,
                user_id: user.id,
                device_hash: secret.hash(),
                first_seen_at: now,
                last_seen_at: now,
                user_agent: meta.user_agent.clone(),
                ip: meta.ip.clone(),
            })
            .await?;
        self.queue_new_device_notice(tx, user, meta, now).await?;
        let ev = NewEvent::new(
            Some(user.tenant_id),
            Actor::User(user.id),
            Action::AuthNewDevice,
            Target::User(user.id),
            meta,
        )
        .with_detail(serde_json::json!({ "ip": meta.ip, "user_agent": meta.user_agent }));
        tx.audit().append_audit(&ev, now).await?;
        Ok(DeviceOutcome { secret, new: true })
    }
}
