//! The crash harness: a child process runs a scripted session with compactions and is killed at
//! every crash point, several hit counts each, and with `SIGKILL` at random instants; after each
//! kill the rollout it left behind must resume to what its oracle says, and the resumed session
//! must compact and run a turn.
//!
//! The child is this test binary again, running only [`crash_child`]; the crash points are
//! compiled in through the `crash-points` feature and armed with `COMPACTOR_CRASH_AT`. A process
//! kill leaves the kernel's page cache intact, so this checks crash consistency, not what a
//! power loss leaves (see D51 in docs/decisions.md).
//!
//! Knobs (read, never set, by the harness): `COMPACTOR_CRASH_SEED` fixes the plan (default: the
//! clock), `COMPACTOR_CRASH_RUN` runs only that run of the plan. A failure prints the seed and the
//! command that reproduces it.

mod script;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use compactor_core::Session;
use compactor_protocol::{ContextualMarkers, EventMsg, ResponseItem, RolloutItem};
use compactor_rollout_trace::crash::{CRASH_AT_ENV, CrashPoint};
use compactor_rollout_trace::parse_rollout;
use compactor_testkit::TestServer;
use serde_json::Value;
use tokio::sync::Semaphore;

use self::script::{ROLLOUT, entry_history, fnv, read_oracle};
use crate::child::child;

/// The child's folder (rollout and oracle).
const DIR_ENV: &str = "COMPACTOR_TEST_CRASH_DIR";
/// The parent's model server.
const URL_ENV: &str = "COMPACTOR_TEST_CRASH_URL";
/// The plan's seed.
const SEED_ENV: &str = "COMPACTOR_CRASH_SEED";
/// Run only this run of the plan.
const RUN_ENV: &str = "COMPACTOR_CRASH_RUN";
/// The child test.
const CHILD: &str = "crash::crash_child";

/// Kills at each crash point, spread over its hit counts.
const RUNS_PER_POINT: usize = 28;
/// Kills at random instants.
const RANDOM_RUNS: usize = 64;
/// Children at once (the machine has two cores).
const PARALLEL: usize = 2;
/// The longest one child may run.
const CHILD_DEADLINE: Duration = Duration::from_secs(60);

/// How a run kills its child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kill {
    /// Abort at the `hit`-th pass through `point`.
    At { point: CrashPoint, hit: u64 },
    /// `SIGKILL` after this long.
    After(Duration),
}

impl Kill {
    fn label(self) -> &'static str {
        match self {
            Kill::At { point, .. } => point.name(),
            Kill::After(_) => "random instant",
        }
    }
}

/// What one run found.
#[derive(Debug)]
enum Outcome {
    /// Killed where planned, and everything checked; whether resuming took over the dead
    /// child's writer lock.
    Killed { took_over_lock: bool },
    /// The random kill came after the child had finished; the finished run was checked.
    FinishedFirst,
}

/// The child: run by the harness with [`DIR_ENV`] set; on its own, it runs the script once to
/// its end in this process and checks that the oracle agrees with the finished rollout.
#[tokio::test(flavor = "multi_thread")]
async fn crash_child() {
    match (std::env::var(DIR_ENV), std::env::var(URL_ENV)) {
        (Ok(dir), Ok(url)) => script::run_script(&url, Path::new(&dir)).await,
        _ => {
            let server = TestServer::start(script::server_config()).await.unwrap();
            let dir = run_dir();
            Box::pin(script::run_script(&server.base_url(), dir.path())).await;
            let entries = read_oracle(dir.path());
            let done = entries.last().unwrap();
            assert_eq!(done["kind"], "done");
            let bytes = std::fs::read(dir.path().join(ROLLOUT)).unwrap();
            let acknowledged = &entries[..entries.len() - 1];
            for entry in acknowledged {
                check_prefix(entry, &bytes).unwrap();
            }
            let compactions = count_compactions(&bytes);
            let installs = acknowledged.iter().filter(|e| e["kind"] == "installed").count();
            assert_eq!(compactions, installs);
            assert!(installs >= 4, "the script compacts automatically too: {installs}");
            let last = acknowledged.last().unwrap();
            assert_eq!(last["installs"], Value::from(installs));
            let resumed = compactor_rollout_trace::Replay::new(
                &compactor_engine::rebuild_legacy_compacted,
                &ContextualMarkers::default(),
            )
            .reconstruct_contents(parse_rollout(&bytes));
            assert_eq!(resumed.history, entry_history(last));
        }
    }
}

/// A folder for one run, in memory when `/dev/shm` is there (the rollout and oracle syncs then
/// cost nothing; a process crash does not care where the page cache lives).
fn run_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::Builder::new().prefix("compactor-crash-").tempdir_in(shm)
    {
        return dir;
    }
    tempfile::Builder::new().prefix("compactor-crash-").tempdir().unwrap()
}

fn count_compactions(bytes: &[u8]) -> usize {
    parse_rollout(bytes)
        .lines
        .iter()
        .filter(|line| matches!(line.item, RolloutItem::Compacted(_)))
        .count()
}

/// Every line the oracle entry acknowledged is in `bytes`, unchanged.
fn check_prefix(entry: &Value, bytes: &[u8]) -> Result<(), String> {
    let len = usize::try_from(entry["rollout_len"].as_u64().unwrap()).unwrap();
    if bytes.len() < len {
        return Err(format!("the rollout has {} bytes; {len} were acknowledged", bytes.len()));
    }
    if fnv(&bytes[..len]) != entry["rollout_hash"].as_str().unwrap() {
        return Err(format!("the first {len} acknowledged bytes of the rollout changed"));
    }
    Ok(())
}

/// The replacement history of the newest complete `compacted` line.
fn newest_replacement(bytes: &[u8]) -> Option<Vec<ResponseItem>> {
    parse_rollout(bytes).lines.into_iter().rev().find_map(|line| match line.item {
        RolloutItem::Compacted(compacted) => compacted.replacement_history,
        _ => None,
    })
}

/// Checks what a kill left in `dir` against the oracle, then resumes it and makes it work.
/// Returns whether resuming took over a stale writer lock.
async fn check_run(kill: Kill, dir: &Path, base_url: &str) -> Result<bool, String> {
    let entries = read_oracle(dir);
    let acknowledged: Vec<&Value> = entries.iter().filter(|e| e["kind"] != "done").collect();
    let rollout = dir.join(ROLLOUT);
    let Ok(bytes) = std::fs::read(&rollout) else {
        // Killed before the session had created its rollout: nothing was acknowledged.
        return if acknowledged.is_empty() {
            Ok(false)
        } else {
            Err("the rollout is gone but the oracle acknowledged lines".to_owned())
        };
    };

    // Every acknowledged line is present.
    let last = acknowledged.last().copied();
    if let Some(entry) = last {
        check_prefix(entry, &bytes)?;
    }
    let installed = last.map_or(0, |entry| entry["installs"].as_u64().unwrap()) as usize;
    let compactions = count_compactions(&bytes);
    let written_not_acknowledged = match compactions.checked_sub(installed) {
        Some(0) => false,
        Some(1) => true,
        _ => {
            return Err(format!(
                "{compactions} compacted lines in the rollout, {installed} installs acknowledged"
            ));
        }
    };
    // At the points after the `compacted` line's write, it must be there; before, not yet.
    let line_expected = match kill {
        Kill::At {
            point:
                CrashPoint::AfterCompactedWrite
                | CrashPoint::AfterCompactedSync
                | CrashPoint::AfterMemorySwap
                | CrashPoint::AfterResponseProcessed,
            ..
        } => Some(true),
        Kill::At { point: CrashPoint::AfterCompactionResponse, .. } => Some(false),
        Kill::At { point: CrashPoint::MidLine, .. } | Kill::After(_) => None,
    };
    if let Some(expected) = line_expected
        && expected != written_not_acknowledged
    {
        return Err(format!(
            "{} unacknowledged compacted line(s) at {}; expected {}",
            usize::from(written_not_acknowledged),
            kill.label(),
            usize::from(expected)
        ));
    }

    // Resume succeeds.
    let config = script::session_config(base_url, dir);
    let (session, mut events) =
        tokio::time::timeout(Duration::from_secs(30), Session::builder(config).resume(&rollout))
            .await
            .map_err(|_| "resume timed out".to_owned())?
            .map_err(|err| format!("resume failed: {err}"))?;
    let mut took_over_lock = false;
    while let Ok(event) = events.try_recv() {
        if let EventMsg::Warning { message } = &event {
            if message.contains("is damaged") {
                return Err(format!("a crash damaged a line: {message}"));
            }
            took_over_lock |= message.contains("took over the stale writer lock");
        }
    }

    // The history is the last acknowledged one, or the one being installed, plus what the step
    // in flight recorded after it.
    let history = session.history();
    if written_not_acknowledged {
        let base = newest_replacement(&bytes).ok_or("the new compacted line has no history")?;
        let exact = line_expected == Some(true);
        if (exact && history != base) || !history.starts_with(&base) {
            return Err(format!(
                "the resumed history ({} items) is not the one being installed ({} items)",
                history.len(),
                base.len()
            ));
        }
    } else if let Some(entry) = last {
        let acknowledged = entry_history(entry);
        if !history.starts_with(&acknowledged) {
            return Err(format!(
                "the resumed history ({} items) does not start with the last acknowledged one \
                 ({} items)",
                history.len(),
                acknowledged.len()
            ));
        }
    }

    // A further compaction and a further turn work (an empty history has nothing to compact).
    let generation = session.window_generation() + u64::from(!history.is_empty());
    let step = async {
        session.compact().await.map_err(|err| format!("compaction after resume: {err}"))?;
        if session.window_generation() != generation {
            return Err("the compaction after resume installed nothing".to_owned());
        }
        session
            .run_turn(script::turn_text(99))
            .await
            .map_err(|err| format!("turn after resume: {err}"))?;
        session.shutdown().await.map_err(|err| format!("shutdown after resume: {err}"))
    };
    tokio::time::timeout(Duration::from_secs(30), step)
        .await
        .map_err(|_| "compaction and turn after resume timed out".to_owned())??;

    // What the resumed session appended reads back whole and resumes to where it ended.
    let bytes = std::fs::read(&rollout).map_err(|err| err.to_string())?;
    let contents = parse_rollout(&bytes);
    if !contents.report.is_clean() {
        return Err(format!("the rollout is damaged after resuming: {:?}", contents.report));
    }
    let replayed = compactor_rollout_trace::Replay::new(
        &compactor_engine::rebuild_legacy_compacted,
        &ContextualMarkers::default(),
    )
    .reconstruct_contents(contents);
    if replayed.history != session.history() {
        return Err("the rollout no longer resumes to the resumed session's history".to_owned());
    }
    Ok(took_over_lock)
}

/// Runs one planned kill and checks it.
async fn run_one(kill: Kill, base_url: String) -> Result<Outcome, String> {
    let dir = run_dir();
    let mut command = child(CHILD);
    command.env(DIR_ENV, dir.path()).env(URL_ENV, &base_url);
    if let Kill::At { point, hit } = kill {
        command.env(CRASH_AT_ENV, format!("{}:{hit}", point.name()));
    }
    let mut process = command.spawn().map_err(|err| format!("cannot start the child: {err}"))?;
    let wait = async {
        if let Kill::After(delay) = kill {
            tokio::select! {
                status = process.wait() => return status,
                () = tokio::time::sleep(delay) => {}
            }
            let _ = process.start_kill();
        }
        process.wait().await
    };
    let status = tokio::time::timeout(CHILD_DEADLINE, wait)
        .await
        .map_err(|_| format!("the child ran longer than {CHILD_DEADLINE:?}"))?
        .map_err(|err| format!("cannot wait for the child: {err}"))?;
    let killed = match (kill, status.signal(), status.code()) {
        (Kill::At { .. }, Some(6), _) | (Kill::After(_), Some(9), _) => true,
        (Kill::After(_), None, Some(0)) => false,
        _ => {
            let output = process.wait_with_output().await.ok();
            let stderr = output
                .map(|output| String::from_utf8_lossy(&output.stderr).into_owned())
                .unwrap_or_default();
            return Err(format!("the child ended with {status} instead\nstderr:\n{stderr}"));
        }
    };
    let took_over_lock = check_run(kill, dir.path(), &base_url).await?;
    Ok(if killed { Outcome::Killed { took_over_lock } } else { Outcome::FinishedFirst })
}

/// The plan: each crash point at every hit count the script reaches, then at random ones, and
/// `SIGKILL` at random instants within one run's duration.
fn plan(seed: u64, hits: &[(CrashPoint, u64)], duration: Duration) -> Vec<Kill> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut kills = Vec::new();
    for &(point, reached) in hits {
        let mut counts: Vec<u64> = (1..=reached).collect();
        rng.shuffle(&mut counts);
        counts.truncate(RUNS_PER_POINT);
        while counts.len() < RUNS_PER_POINT {
            counts.push(rng.u64(1..=reached));
        }
        kills.extend(counts.into_iter().map(|hit| Kill::At { point, hit }));
    }
    // A fraction of the run, so that the seed alone fixes which run is which.
    kills.extend((0..RANDOM_RUNS).map(|_| Kill::After(duration.mul_f64(rng.f64()))));
    rng.shuffle(&mut kills);
    kills
}

/// The per-point and random tallies, as the harness prints them.
#[derive(Default)]
struct Tally {
    killed: BTreeMap<&'static str, usize>,
    finished_first: usize,
    locks_taken_over: usize,
    failures: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_harness() {
    let started = Instant::now();
    let seed =
        std::env::var(SEED_ENV).ok().and_then(|seed| seed.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
                as u64
        });
    let only: Option<usize> = std::env::var(RUN_ENV).ok().and_then(|run| run.parse().ok());
    let server = TestServer::start(script::server_config()).await.unwrap();
    let base_url = server.base_url();

    // One run to its end: how often each point is passed, and how long a run takes.
    let golden = run_dir();
    let begun = Instant::now();
    let output = tokio::time::timeout(
        CHILD_DEADLINE,
        child(CHILD).env(DIR_ENV, golden.path()).env(URL_ENV, &base_url).output(),
    )
    .await
    .expect("the uncrashed child timed out")
    .unwrap();
    let duration = begun.elapsed();
    assert!(
        output.status.success(),
        "the uncrashed child failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let done = read_oracle(golden.path()).pop().unwrap();
    assert_eq!(done["kind"], "done");
    let hits: Vec<(CrashPoint, u64)> = CrashPoint::ALL
        .iter()
        .map(|point| (*point, done["hits"][point.name()].as_u64().unwrap()))
        .collect();
    for (point, reached) in &hits {
        assert!(*reached > 0, "the script never passes {}", point.name());
    }

    let kills = plan(seed, &hits, duration);
    assert!(kills.len() >= 200, "the plan has {} runs", kills.len());
    assert!(only.is_none_or(|run| run < kills.len()), "{RUN_ENV} is past the plan's last run");
    let limit = Arc::new(Semaphore::new(PARALLEL));
    let mut runs = tokio::task::JoinSet::new();
    for (index, kill) in kills.iter().copied().enumerate() {
        if only.is_some_and(|only| only != index) {
            continue;
        }
        let limit = Arc::clone(&limit);
        let base_url = base_url.clone();
        runs.spawn(async move {
            let _permit = limit.acquire_owned().await.unwrap();
            (index, kill, run_one(kill, base_url).await)
        });
    }
    let mut tally = Tally::default();
    while let Some(joined) = runs.join_next().await {
        let (index, kill, result) = joined.unwrap();
        match result {
            Ok(Outcome::Killed { took_over_lock }) => {
                *tally.killed.entry(kill.label()).or_default() += 1;
                tally.locks_taken_over += usize::from(took_over_lock);
            }
            Ok(Outcome::FinishedFirst) => tally.finished_first += 1,
            Err(error) => tally.failures.push(format!("run {index} ({kill:?}): {error}")),
        }
    }
    server.shutdown().await.unwrap();

    let mut report = format!(
        "crash harness: seed {seed}, {} runs in {:.1} s (one uncrashed run: {} ms)\n",
        if only.is_some() { 1 } else { kills.len() },
        started.elapsed().as_secs_f64(),
        duration.as_millis()
    );
    for (point, reached) in &hits {
        let killed = tally.killed.get(point.name()).copied().unwrap_or(0);
        report.push_str(&format!(
            "  {:<26} {killed:>4} kills (passed {reached} times per run)\n",
            point.name()
        ));
    }
    report.push_str(&format!(
        "  {:<26} {:>4} kills, {} more finished before their kill\n",
        "random instant (SIGKILL)",
        tally.killed.get("random instant").copied().unwrap_or(0),
        tally.finished_first
    ));
    let kills: usize = tally.killed.values().sum();
    report.push_str(&format!(
        "  {:<26} {kills:>4} kills; resuming took over the dead child's lock {} times\n",
        "total", tally.locks_taken_over
    ));
    report.push_str(&format!("  {:<26} {:>4}\n", "failures", tally.failures.len()));
    #[allow(clippy::print_stdout, reason = "the harness reports its counts")]
    {
        println!("{report}");
    }
    if !tally.failures.is_empty() {
        let first = tally.failures[0].split(' ').nth(1).unwrap_or("0");
        panic!(
            "{report}{}\nreproduce with: {SEED_ENV}={seed} {RUN_ENV}={first} cargo nextest run -p \
             compactor-tests crash_harness",
            tally.failures.join("\n")
        );
    }
}
