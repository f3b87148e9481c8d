//! LISTEN/NOTIFY for `listen.js`: `NativePool.listen` resolves to a `NativeListener`
//! (`stop()`), notifications and listening gaps reach JS through thread-safe functions that
//! do not keep the process alive. The policy (one session, following the primary, gaps) is
//! `hyperion_pool::listen`.

use crate::errors::Failure;
use crate::pool::NativePool;
use crate::settle::{Settled, Settler};
use hyperion_pool::{Inbox, ListenGap, Listener};
use hyperion_wire::Notification;
use napi::threadsafe_function::{
    ErrorStrategy, ThreadSafeCallContext, ThreadsafeFunction, ThreadsafeFunctionCallMode,
};
use napi::{Env, JsFunction, JsObject};
use napi_derive::napi;
use std::sync::Arc;

/// One listener; `stop()` UNLISTENs (the last of a channel) and resolves when done.
#[napi]
pub struct NativeListener {
    listener: Arc<Listener>,
    settler: Settler,
}

#[napi]
impl NativeListener {
    #[napi(ts_return_type = "Promise<void>")]
    pub fn stop(&self, env: Env) -> napi::Result<JsObject> {
        let listener = self.listener.clone();
        self.settler.spawn(&env, None, async move {
            listener.stop().await?;
            Ok(())
        })
    }
}

impl Settled for NativeListener {
    unsafe fn into_js(self, env: napi::sys::napi_env) -> Result<napi::sys::napi_value, Failure> {
        Ok(<NativeListener as napi::bindgen_prelude::ToNapiValue>::to_napi_value(env, self)?)
    }
}

#[napi]
impl NativePool {
    /// LISTENs on `channel`: `callback(payload, channel, processId)` for each notification
    /// (`listen.js` ignores what it throws). `on_gap({ from, to })`, when given, becomes the
    /// pool's gap callback. Resolves to a `NativeListener` once the LISTEN is in place.
    #[napi(ts_return_type = "Promise<NativeListener>")]
    pub fn listen(
        &self,
        env: Env,
        channel: String,
        callback: JsFunction,
        on_gap: Option<JsFunction>,
    ) -> napi::Result<JsObject> {
        // Notifications wait in the pool's bounded inbox; the JS thread is woken once a batch
        // and takes them all, as a flat array `[payload, channel, processId, ...]`. A batch
        // that found notifications dropped (the inbox was full) reports their window as a
        // listening gap (`hyperion_pool::Inbox`).
        let inbox = Arc::new(Inbox::default());
        let (taker, pool) = (inbox.clone(), self.pool.clone());
        let mut tsfn: ThreadsafeFunction<(), ErrorStrategy::Fatal> = callback
            .create_threadsafe_function(0, move |ctx: ThreadSafeCallContext<()>| {
                let (batch, gap) = taker.take();
                if let Some(gap) = gap {
                    pool.report_listen_gap(gap);
                }
                let mut a = ctx.env.create_array_with_length(batch.len() * 3)?;
                for (i, n) in batch.iter().enumerate() {
                    let i = u32::try_from(i * 3).unwrap_or(u32::MAX - 2);
                    a.set_element(i, ctx.env.create_string(&n.payload)?)?;
                    a.set_element(i + 1, ctx.env.create_string(&n.channel)?)?;
                    a.set_element(i + 2, ctx.env.create_int32(n.process_id)?)?;
                }
                Ok(vec![a])
            })?;
        tsfn.unref(&env)?;
        if let Some(on_gap) = on_gap {
            let mut gap: ThreadsafeFunction<ListenGap, ErrorStrategy::Fatal> = on_gap
                .create_threadsafe_function(0, |ctx: ThreadSafeCallContext<ListenGap>| {
                    let mut o = ctx.env.create_object()?;
                    o.set_named_property("from", ctx.env.create_double(ctx.value.from_ms as f64)?)?;
                    o.set_named_property("to", ctx.env.create_double(ctx.value.to_ms as f64)?)?;
                    Ok(vec![o])
                })?;
            gap.unref(&env)?;
            self.pool.on_listen_gap(Arc::new(move |g| {
                gap.call(g, ThreadsafeFunctionCallMode::NonBlocking);
            }));
        }
        let pool = self.pool.clone();
        let settler = self.settler.clone();
        self.settler.spawn(&env, None, async move {
            let listener = pool
                .listen(
                    &channel,
                    Arc::new(move |n: &Notification| {
                        if inbox.push(n) {
                            tsfn.call((), ThreadsafeFunctionCallMode::NonBlocking);
                        }
                    }),
                )
                .await?;
            Ok(NativeListener {
                listener: Arc::new(listener),
                settler,
            })
        })
    }

    /// The listening session's backend process id, if one is open.
    #[napi]
    pub fn listen_process_id(&self) -> Option<i32> {
        self.pool.listen_process_id()
    }
}
