//! The main loop: terminal guard, input thread, data task, tick →
//! `app::update` → `ui::render`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ratatui::crossterm::event as ct;
use tokio::sync::mpsc;

use crate::app::{self, State};
use crate::event::Event;
use crate::terminal::TerminalGuard;

/// How often the screen is redrawn without new events.
const TICK: Duration = Duration::from_millis(250);
/// How long the input thread waits for a key before checking for stop.
const INPUT_POLL: Duration = Duration::from_millis(50);

/// `kmon tui`'s options.
#[derive(Debug, Clone)]
pub struct Config {
    /// Any broker of the cluster.
    pub bootstrap: String,
    /// Time between two refreshes.
    pub refresh: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum TuiError {
    #[error("terminal: {0}")]
    Terminal(#[source] std::io::Error),
}

/// Runs the TUI until `q` or Ctrl-C; the terminal is restored on every
/// way out.
pub async fn run(config: Config) -> Result<(), TuiError> {
    let mut guard = TerminalGuard::enter().map_err(TuiError::Terminal)?;
    let (tx, mut rx) = mpsc::channel::<Event>(64);

    let stop = Arc::new(AtomicBool::new(false));
    let input = {
        let (tx, stop) = (tx.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match ct::poll(INPUT_POLL) {
                    Ok(true) => match ct::read() {
                        Ok(ct::Event::Key(key)) => {
                            if tx.blocking_send(Event::Key(key)).is_err() {
                                return;
                            }
                        }
                        Ok(_) => {
                            let _ = tx.try_send(Event::Tick);
                        }
                        Err(_) => return,
                    },
                    Ok(false) => {}
                    Err(_) => return,
                }
            }
        })
    };
    let data = tokio::spawn(crate::client::run(config.bootstrap.clone(), config.refresh, tx.clone()));
    drop(tx);

    let mut state = State::new(config.bootstrap);
    let mut tick = tokio::time::interval(TICK);
    let result = loop {
        if let Err(error) = guard.terminal.draw(|frame| crate::ui::render(&state, frame)) {
            break Err(TuiError::Terminal(error));
        }
        let event = tokio::select! {
            event = rx.recv() => match event {
                Some(event) => event,
                None => break Ok(()),
            },
            _ = tick.tick() => Event::Tick,
            _ = tokio::signal::ctrl_c() => break Ok(()),
        };
        app::update(&mut state, event);
        // Handle queued events before drawing again.
        while let Ok(event) = rx.try_recv() {
            app::update(&mut state, event);
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
