//! `terrariumctl`: the umbrella command of the Terrarium suite.
//!
//! `terrariumctl WORD... [ARGS]` replaces itself (exec) with the executable
//! `terrarium-WORD-WORD...` of the longest matching word run, like kubectl plugins and
//! cargo's external subcommands: `terrariumctl proxy sync --dry-run` runs
//! `terrarium-proxy-sync --dry-run`, `terrariumctl backup export` runs
//! `terrarium-backup export`. Exit codes, signals, stdin and the terminal pass through.

mod discover;

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::ExitCode;

use terrarium_common::Exit;

pub use discover::{Tool, find_tool, list_tools, search_dirs};

const NAME: &str = "terrariumctl";

/// The clap definition, for `--help`, the man page and shell completions.
pub fn cli() -> clap::Command {
    clap::Command::new(NAME)
        .version(terrarium_common::VERSION)
        .about("Run a Terrarium tool by its words: `terrariumctl proxy sync` runs `terrarium-proxy-sync`")
        .long_about(
            "Run a Terrarium tool by its words. `terrariumctl WORD... [ARGS]` executes the \
             longest-matching `terrarium-WORD-WORD...` program with the remaining arguments, \
             searching TERRARIUM_TOOL_PATH, the directory of terrariumctl itself, /usr/lib/terrarium \
             and PATH, in that order. Without words it lists the installed tools.",
        )
        .arg(
            clap::Arg::new("list")
                .long("list")
                .action(clap::ArgAction::SetTrue)
                .help("List the installed tools, one line each"),
        )
        .arg(
            clap::Arg::new("words")
                .num_args(0..)
                .trailing_var_arg(true)
                .allow_hyphen_values(true)
                .value_name("WORD... [ARGS]"),
        )
        .disable_help_subcommand(true)
}

/// Run with the arguments after the program name. Returns only when nothing was exec'd.
pub fn run(args: Vec<OsString>) -> ExitCode {
    let first = args.first().and_then(|a| a.to_str());
    match first {
        None | Some("--list") | Some("help") if args.len() <= 1 => print_list(),
        Some("-h") | Some("--help") => {
            let _ = cli().print_long_help();
            print_list()
        }
        Some("-V") | Some("--version") => {
            println!("{NAME} {}", terrarium_common::VERSION);
            ExitCode::SUCCESS
        }
        // `terrariumctl help proxy sync` is `terrarium-proxy-sync --help`.
        Some("help") => dispatch(&args[1..], Some("--help".into())),
        // A flag before the words: the tool's own flags follow them (`status --json`).
        Some(flag) if flag.starts_with('-') => fail(&format!(
            "`{}` comes before the tool's words; {NAME} takes only --list, --help and --version there. Put the tool's flags after its words: `{NAME} WORD... {}`",
            terrarium_common::terminal::escape(flag),
            terrarium_common::terminal::escape(flag)
        )),
        _ => dispatch(&args, None),
    }
}

fn dispatch(args: &[OsString], extra: Option<OsString>) -> ExitCode {
    let dirs = search_dirs();
    match find_tool(args, &dirs) {
        Ok((tool, consumed)) => {
            let mut command = std::process::Command::new(&tool.path);
            command.args(extra).args(&args[consumed..]);
            // exec only returns on failure.
            let err = command.exec();
            fail(&format!("cannot run {}: {err}", tool.path.display()))
        }
        Err(discover::NotFound::NotExecutable(path)) => fail(&format!(
            "{} is not executable; reinstall the package, or run `chmod +x {}`",
            path.display(),
            path.display()
        )),
        Err(discover::NotFound::Unknown(words)) => {
            let mut message = format!("`{}` is not a Terrarium tool", terrarium_common::terminal::escape(&words));
            let known = list_tools(&dirs);
            let suggestion = known
                .iter()
                .map(|tool| (strsim::jaro_winkler(&words, &tool.words()), tool.words()))
                .filter(|(score, _)| *score > 0.7)
                .max_by(|a, b| a.0.total_cmp(&b.0));
            if let Some((_, best)) = suggestion {
                message.push_str(&format!(" (did you mean `{NAME} {best}`?)"));
            }
            message.push_str(&format!("; run `{NAME} --list` to see the installed tools"));
            fail(&message)
        }
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("{NAME}: error: {message}");
    Exit::Usage.into()
}

fn print_list() -> ExitCode {
    let tools = list_tools(&search_dirs());
    if tools.is_empty() {
        println!("No Terrarium tools found. Install them with `apt install terrarium`.");
        return ExitCode::SUCCESS;
    }
    println!("Usage: {NAME} WORD... [ARGS]\n\nInstalled tools:");
    let width = tools.iter().map(|t| t.words().len()).max().unwrap_or(0);
    for tool in &tools {
        println!("  {:width$}  {}", tool.words(), tool.summary());
    }
    ExitCode::SUCCESS
}
