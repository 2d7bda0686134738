//! The main loop: terminal guard, input thread, data task → `app::update`
//! → `ui::render`. The screen is drawn only after events (a key, a
//! refresh, a resize): nothing on it changes between them, so an idle TUI
//! costs nothing between refreshes.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ratatui::crossterm::event as ct;
use tokio::sync::mpsc;

use crate::app::{self, State};
use crate::event::Event;
use crate::terminal::TerminalGuard;
use crate::timings::Timings;

/// How long the input thread waits for a key before checking for stop.
const INPUT_POLL: Duration = Duration::from_millis(50);

/// `kmon tui`'s options.
#[derive(Debug, Clone)]
pub struct Config {
    /// Any broker of the cluster.
    pub bootstrap: String,
    /// Time between two refreshes.
    pub refresh: Duration,
    /// Where to log timings (see [`crate::timings`]); `None`: nowhere.
    pub timings: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum TuiError {
    #[error("terminal: {0}")]
    Terminal(#[source] std::io::Error),
    #[error("timings file: {0}")]
    Timings(#[source] std::io::Error),
}

/// When each key not yet handled was read, oldest first (kept only when
/// timings are logged). Keys reach the main loop in this order.
type KeyStamps = Arc<Mutex<VecDeque<Instant>>>;

/// Runs the TUI until `q` or Ctrl-C; the terminal is restored on every
/// way out.
pub async fn run(config: Config) -> Result<(), TuiError> {
    let timings = Timings::open(config.timings.as_deref()).map_err(TuiError::Timings)?;
    let mut guard = TerminalGuard::enter().map_err(TuiError::Terminal)?;
    let (tx, mut rx) = mpsc::channel::<Event>(64);

    let stop = Arc::new(AtomicBool::new(false));
    let stamps: KeyStamps = Arc::default();
    let input = {
        let (tx, stop, stamps, stamping) = (tx.clone(), stop.clone(), stamps.clone(), timings.enabled());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match ct::poll(INPUT_POLL) {
                    Ok(true) => match ct::read() {
                        Ok(ct::Event::Key(key)) => {
                            if stamping {
                                stamps.lock().unwrap_or_else(|p| p.into_inner()).push_back(Instant::now());
                            }
                            if tx.blocking_send(Event::Key(key)).is_err() {
                                return;
                            }
                        }
                        Ok(_) => {
                            // A resize (or mouse, focus): draw again.
                            let _ = tx.try_send(Event::Redraw);
                        }
                        Err(_) => return,
                    },
                    Ok(false) => {}
                    Err(_) => return,
                }
            }
        })
    };
    let data = tokio::spawn(crate::client::run(config.bootstrap.clone(), config.refresh, tx.clone(), timings.clone()));
    drop(tx);

    let mut state = State::new(config.bootstrap);
    let mut keys_read: Vec<Instant> = Vec::new();
    let result = loop {
        let drawing = Instant::now();
        if let Err(error) = guard.terminal.draw(|frame| crate::ui::render(&state, frame)) {
            break Err(TuiError::Terminal(error));
        }
        if timings.enabled() {
            let drawn = Instant::now();
            timings.record("draw", drawn - drawing, "");
            for read in keys_read.drain(..) {
                timings.record("key", drawn - read, "");
            }
        }
        let event = tokio::select! {
            event = rx.recv() => match event {
                Some(event) => event,
                None => break Ok(()),
            },
            _ = tokio::signal::ctrl_c() => break Ok(()),
        };
        handle(&mut state, event, &timings, &stamps, &mut keys_read);
        // Handle queued events before drawing again.
        while let Ok(event) = rx.try_recv() {
            handle(&mut state, event, &timings, &stamps, &mut keys_read);
        }
        if state.quit {
            break Ok(());
        }
    };
    stop.store(true, Ordering::Relaxed);
    data.abort();
    drop(guard);
    let _ = input.join();
    result
}

/// `app::update`, timing refreshes and noting when handled keys were read.
fn handle(state: &mut State, event: Event, timings: &Timings, stamps: &KeyStamps, keys_read: &mut Vec<Instant>) {
    if !timings.enabled() {
        return app::update(state, event);
    }
    match &event {
        Event::Key(_) => keys_read.extend(stamps.lock().unwrap_or_else(|p| p.into_inner()).pop_front()),
        Event::Data(_) => {
            let started = Instant::now();
            app::update(state, event);
            timings.record("data", started.elapsed(), "");
            return;
        }
        _ => {}
    }
    app::update(state, event);
}
