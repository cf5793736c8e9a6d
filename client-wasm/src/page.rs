//! The page side of the glue: the `Drupal.Nodejs` object and the settings object, as JS values.
//!
//! Everything here looks the registries up when it needs them (so callbacks registered after
//! start are found), calls page code with exceptions caught and logged, and writes the state
//! the module exposed (`Drupal.Nodejs.socket`) plus a `drupal-push:status` event on `window`.
//!
//! Delivery ([`Page::deliver`]): the module's rules (`Drupal.Nodejs.runCallbacks`, or the io
//! facade's `message` listeners, which are the module's own `runCallbacks`), then the
//! listeners of drupal-push: `Drupal.Nodejs.channelCallbacks` (keys are channel names or
//! `prefix*` patterns, values an entry `{callback}` or an array of them, as `onChannel` adds)
//! and `Drupal.Nodejs.broadcastCallbacks` (an array of `{callback}`, as `onBroadcast` adds).
//! They are called as `callback(message, meta)`.

use crate::dispatch::{self, CallbackField, Listeners, MessageView, Route};
use crate::js;
pub(crate) use crate::js::{get, set};
use crate::machine::Status;
use crate::out::digits;
use crate::settings::{PageLocation, Scalar, Source};
use alloc::string::String;
use alloc::vec::Vec;
use js_sys::{Array, Function, Object};
use wasm_bindgen::{JsCast, JsValue};

/// The JS objects the client works with.
#[derive(Clone)]
pub struct Page {
    /// `Drupal.Nodejs`.
    pub nodejs: Object,
    /// `drupalSettings.nodejs` (Drupal 8+) or `Drupal.settings.nodejs` (Drupal 7).
    pub settings: JsValue,
}

/// A new plain object with the members the nodejs module creates `Drupal.Nodejs` with.
pub fn initial_nodejs_object() -> Object {
    let o = Object::new();
    for key in ["callbacks", "presenceCallbacks", "contentChannelNotificationCallbacks"] {
        set(&o, key, &Object::new());
    }
    set(&o, "connectionSetupHandlers", &Object::new());
    set(&o, "socket", &JsValue::FALSE);
    o
}

impl Page {
    /// `window.Drupal.Nodejs` (created with the module's initial shape when missing) and the
    /// Drupal 8+ or Drupal 7 settings.
    pub fn from_window() -> Option<Page> {
        let window = js::global();
        let mut drupal = get(&window, "Drupal");
        if !drupal.is_object() {
            drupal = Object::new().into();
            set(&window, "Drupal", &drupal);
        }
        let mut nodejs = get(&drupal, "Nodejs");
        if !nodejs.is_object() {
            nodejs = initial_nodejs_object().into();
            set(&drupal, "Nodejs", &nodejs);
        }
        let d8 = get(&get(&window, "drupalSettings"), "nodejs");
        let settings = if d8.is_object() { d8 } else { get(&get(&drupal, "settings"), "nodejs") };
        Some(Page { nodejs: nodejs.unchecked_into(), settings })
    }

    /// The settings, for [`crate::settings::parse`].
    pub fn settings(&self) -> JsSource<'_> {
        JsSource(&self.settings)
    }

    /// Stores a joined content token in the settings, as the module did, so that code reading
    /// `contentTokens` sees it.
    pub fn store_token(&self, channel: &str, token: &str) {
        if !self.settings.is_object() {
            return;
        }
        let mut tokens = get(&self.settings, "contentTokens");
        if !tokens.is_object() || Array::is_array(&tokens) {
            tokens = Object::new().into();
            set(&self.settings, "contentTokens", &tokens);
        }
        set(&tokens, channel, &JsValue::from_str(token));
    }

    /// Delivers a message: the module's rules, then the channel or broadcast callbacks.
    /// `facade` is the io facade's socket, whose `message` listeners stand for the module's
    /// `runCallbacks`; without it, `Drupal.Nodejs.runCallbacks` is called (so page code that
    /// wraps it sees every message), or the rules are applied here when it is not a function.
    pub fn deliver(
        &self,
        message: &JsValue,
        channel: Option<&str>,
        meta: &JsValue,
        own_socket_id: Option<&str>,
        facade: Option<&JsValue>,
    ) {
        let listeners = dispatch::listeners(channel, &view_of(message), own_socket_id);
        if let Some(socket) = facade {
            socket.unchecked_ref::<js::Driver>().fire("message", message);
        } else {
            let run = get(&self.nodejs, "runCallbacks");
            match run.dyn_ref::<Function>() {
                Some(f) => {
                    if let Err(e) = f.call1(&self.nodejs, message) {
                        js::error("drupal-push: runCallbacks threw", &e);
                    }
                }
                None => self.run_callbacks(message, own_socket_id),
            }
        }
        self.run_listeners(&listeners, message, meta);
    }

    /// Calls the channel callbacks or broadcast callbacks [`dispatch::listeners`] chose.
    pub fn run_listeners(&self, listeners: &Listeners, message: &JsValue, meta: &JsValue) {
        let call = |entry: &JsValue, name: &str| {
            if let Some(f) = get(entry, "callback").dyn_ref::<Function>()
                && let Err(e) = f.call2(entry, message, meta)
            {
                js::error(&crate::out::cat(&["drupal-push: callback of \"", name, "\" threw"]), &e);
            }
        };
        match listeners {
            Listeners::None => {}
            Listeners::Channel(channel) => {
                let registry = get(&self.nodejs, "channelCallbacks");
                for key in keys(&registry) {
                    if dispatch::channel_matches(&key, channel) {
                        for entry in entries(&get(&registry, &key)) {
                            call(&entry, &key);
                        }
                    }
                }
            }
            Listeners::Broadcast => {
                for entry in entries(&get(&self.nodejs, "broadcastCallbacks")) {
                    call(&entry, "onBroadcast");
                }
            }
        }
    }

    /// The module's `runCallbacks(message)`; see [`crate::dispatch`].
    pub fn run_callbacks(&self, message: &JsValue, own_socket_id: Option<&str>) {
        match dispatch::route(&view_of(message), own_socket_id) {
            Route::SelfSkip => {}
            Route::Named { names, wrap } => {
                if wrap {
                    let list = Array::new();
                    names.iter().for_each(|n| _ = list.push(&JsValue::from_str(n)));
                    set(message, "callback", &list);
                }
                let registry = get(&self.nodejs, "callbacks");
                names.iter().for_each(|n| call_entry(&registry, n, "callback", message));
            }
            Route::Presence => self.call_all("presenceCallbacks", message),
            Route::ContentChannel => self.call_all("contentChannelNotificationCallbacks", message),
            Route::All => self.call_all("callbacks", message),
        }
    }

    fn call_all(&self, registry: &str, message: &JsValue) {
        let registry = get(&self.nodejs, registry);
        for name in keys(&registry) {
            call_entry(&registry, &name, "callback", message);
        }
    }

    /// The module's `runSetupHandlers(type)`: `handler[type]()` for every handler that has it.
    pub fn run_setup_handlers(&self, kind: &str) {
        let registry = get(&self.nodejs, "connectionSetupHandlers");
        for name in keys(&registry) {
            call_entry(&registry, &name, kind, &JsValue::UNDEFINED);
        }
    }
}

/// The entries of a registry value: an array of entries, or one entry.
fn entries(value: &JsValue) -> Vec<JsValue> {
    if Array::is_array(value) {
        Array::from(value).iter().collect()
    } else if value.is_object() {
        alloc::vec![value.clone()]
    } else {
        Vec::new()
    }
}

/// `{state, socketId, uid, attempts, lastClose, retryInMs}`.
pub fn status_object(status: &Status) -> JsValue {
    let o = Object::new();
    let opt = |v: Option<f64>| v.map_or(JsValue::NULL, JsValue::from_f64);
    set(&o, "state", &JsValue::from_str(status.state.as_str()));
    set(&o, "socketId", &status.socket_id.as_deref().map_or(JsValue::NULL, JsValue::from_str));
    set(&o, "uid", &opt(status.uid.map(|u| u as f64)));
    set(&o, "attempts", &JsValue::from_f64(status.attempts.into()));
    set(&o, "lastClose", &opt(status.last_close.map(f64::from)));
    set(&o, "retryInMs", &opt(status.retry_in_ms.map(|ms| ms as f64)));
    o.into()
}

/// Where the page was loaded from, for settings that name no host or scheme.
pub fn location() -> PageLocation {
    let location = get(&js::global(), "location");
    let protocol = get(&location, "protocol").as_string().unwrap_or_default();
    let hostname = get(&location, "hostname").as_string().unwrap_or_default();
    PageLocation { secure: protocol == "https:", hostname }
}

/// The settings object as a [`Source`].
pub struct JsSource<'a>(pub &'a JsValue);

impl JsSource<'_> {
    fn walk(&self, path: &[&str]) -> JsValue {
        path.iter().fold(self.0.clone(), |v, key| get(&v, key))
    }
}

fn scalar_of(v: &JsValue) -> Scalar {
    if let Some(s) = v.as_string() {
        Scalar::Str(s)
    } else if let Some(n) = v.as_f64() {
        Scalar::Num(n)
    } else if let Some(b) = v.as_bool() {
        Scalar::Bool(b)
    } else {
        Scalar::Other
    }
}

impl Source for JsSource<'_> {
    fn is_object(&self) -> bool {
        self.0.is_object()
    }

    fn scalar(&self, path: &[&str]) -> Option<Scalar> {
        let v = self.walk(path);
        (!v.is_undefined()).then(|| scalar_of(&v))
    }

    fn entries(&self, path: &[&str]) -> Vec<(String, Scalar)> {
        let v = self.walk(path);
        keys(&v).into_iter().map(|k| (k.clone(), scalar_of(&get(&v, &k)))).collect()
    }
}

/// The [`MessageView`] of a JS message object.
pub fn view_of(message: &JsValue) -> MessageView {
    let callback = get(message, "callback");
    let callback = if !callback.is_truthy() {
        CallbackField::Absent
    } else if let Some(name) = callback.as_string() {
        CallbackField::One(name)
    } else if Array::is_array(&callback) {
        CallbackField::Many(Array::from(&callback).iter().filter_map(|v| key_of(&v)).collect())
    } else {
        CallbackField::Many(Vec::new())
    };
    MessageView {
        callback,
        presence_notification: !get(message, "presenceNotification").is_undefined(),
        content_channel_notification: !get(message, "contentChannelNotification").is_undefined(),
        client_socket_id: get(message, "clientSocketId").as_string(),
        broadcast: get(message, "broadcast").is_truthy(),
    }
}

/// Same rule as [`dispatch::key_of`]: strings, and non-negative integers as their digits.
fn key_of(v: &JsValue) -> Option<String> {
    match v.as_f64() {
        Some(f) => crate::out::whole(f).map(digits),
        None => v.as_string(),
    }
}

fn keys(registry: &JsValue) -> Vec<String> {
    match registry.dyn_ref::<Object>() {
        Some(o) => Object::keys(o).iter().filter_map(|k| k.as_string()).collect(),
        None => Vec::new(),
    }
}

/// Calls `registry[name][method](arg)` with `this` = the entry, if it is a function; an
/// exception is logged and does not stop the caller's loop.
fn call_entry(registry: &JsValue, name: &str, method: &str, arg: &JsValue) {
    let entry = get(registry, name);
    let f = get(&entry, method);
    let Some(f) = f.dyn_ref::<Function>() else {
        return;
    };
    if let Err(e) = f.call1(&entry, arg) {
        let what = crate::out::cat(&["drupal-push: ", method, " of \"", name, "\" threw"]);
        js::error(&what, &e);
    }
}
