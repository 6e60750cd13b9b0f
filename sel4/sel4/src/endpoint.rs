//! Endpoints (synchronous messages) and notifications (signals).

use sel4_sys as sys;

use crate::{Badge, Cap, MessageInfo, cap_type, with_ipc_buffer};

impl Cap<cap_type::Endpoint> {
    /// Sends the message in the IPC buffer, blocking until a receiver takes it. Performs
    /// `seL4_Send`.
    pub fn send(self, info: MessageInfo) {
        with_ipc_buffer(|b| b.raw_mut().seL4_Send(self.bits(), info.into_raw()));
    }

    /// Sends the message if a receiver is waiting, else drops it. Performs `seL4_NBSend`.
    pub fn nb_send(self, info: MessageInfo) {
        with_ipc_buffer(|b| b.raw_mut().seL4_NBSend(self.bits(), info.into_raw()));
    }

    /// Sends the message and waits for the reply, which replaces it in the IPC buffer; returns
    /// the reply's message info. Performs `seL4_Call`.
    pub fn call(self, info: MessageInfo) -> MessageInfo {
        with_ipc_buffer(|b| MessageInfo::from_raw(b.raw_mut().seL4_Call(self.bits(), info.into_raw())))
    }

    /// Waits for a message; returns its info and the sender's badge. Performs `seL4_Recv`.
    pub fn recv(self) -> (MessageInfo, Badge) {
        with_ipc_buffer(|b| {
            let (info, badge) = b.raw_mut().seL4_Recv(self.bits());
            (MessageInfo::from_raw(info), badge)
        })
    }

    /// Takes a message if one is waiting; returns its info and badge (both zero when there was
    /// none). Performs `seL4_NBRecv`.
    pub fn nb_recv(self) -> (MessageInfo, Badge) {
        with_ipc_buffer(|b| {
            let (info, badge) = b.raw_mut().seL4_NBRecv(self.bits());
            (MessageInfo::from_raw(info), badge)
        })
    }

    /// Replies to the last caller with the message in the IPC buffer, then waits on this endpoint
    /// for the next message; returns its info and badge. Performs `seL4_ReplyRecv`.
    pub fn reply_recv(self, reply: MessageInfo) -> (MessageInfo, Badge) {
        with_ipc_buffer(|b| {
            let (info, badge) = b.raw_mut().seL4_ReplyRecv(self.bits(), reply.into_raw());
            (MessageInfo::from_raw(info), badge)
        })
    }
}

/// Replies to the thread that last called this one (seL4 5.0 keeps one implicit reply
/// capability per thread; it is consumed by this reply). Performs `seL4_Reply`.
pub fn reply(info: MessageInfo) {
    with_ipc_buffer(|b| b.raw_mut().seL4_Reply(info.into_raw()));
}

/// Gives up the rest of the time slice. Performs `seL4_Yield`.
pub fn yield_now() {
    sys::seL4_Yield();
}

impl Cap<cap_type::Notification> {
    /// Signals the notification (its badge is ORed into the notification word). Performs
    /// `seL4_Signal`.
    pub fn signal(self) {
        sys::seL4_Signal(self.bits());
    }

    /// Waits until the notification is signalled; returns the accumulated badges. Performs
    /// `seL4_Wait`.
    pub fn wait(self) -> Badge {
        sys::seL4_Wait(self.bits())
    }

    /// Returns the accumulated badges if the notification was signalled, else 0. Performs
    /// `seL4_Poll`.
    pub fn poll(self) -> Badge {
        sys::seL4_Poll(self.bits())
    }
}
