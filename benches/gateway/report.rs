//! The result table: rows with a target and whether it was met, printed
//! as aligned plain text, and the number formats it uses.

#[derive(Clone, Copy)]
pub enum Met {
    Yes,
    No,
    Na,
}

impl Met {
    pub fn of(ok: bool) -> Met {
        if ok {
            Met::Yes
        } else {
            Met::No
        }
    }
}

pub struct Row {
    id: &'static str,
    what: String,
    result: String,
    target: &'static str,
    met: Met,
}

pub struct Table(pub Vec<Row>);

impl Table {
    pub fn add(&mut self, id: &'static str, what: &str, target: &'static str, r: (String, Met)) {
        eprintln!("bench: {id:>3} {what}: {}", r.0);
        self.0.push(Row {
            id,
            what: what.to_string(),
            result: r.0,
            target,
            met: r.1,
        });
    }

    pub fn na(&mut self, id: &'static str, what: &str, target: &'static str, why: &str) {
        self.add(id, what, target, (why.to_string(), Met::Na));
    }

    pub fn print(&self) {
        let head = ["#", "measure", "result", "target", "met?"];
        let cells: Vec<[String; 5]> = self
            .0
            .iter()
            .map(|r| {
                let met = match r.met {
                    Met::Yes => "yes",
                    Met::No => "NO",
                    Met::Na => "n/a",
                };
                let target = r.target.to_string();
                [
                    r.id.to_string(),
                    r.what.clone(),
                    r.result.clone(),
                    target,
                    met.into(),
                ]
            })
            .collect();
        let width = |i: usize| {
            cells
                .iter()
                .map(|c| c[i].chars().count())
                .chain([head[i].len()])
                .max()
                .unwrap_or(0)
        };
        let w: Vec<usize> = (0..5).map(width).collect();
        let line = |c: [&str; 5]| {
            let mut s = String::new();
            for (i, cell) in c.iter().enumerate() {
                let pad = w[i] - cell.chars().count();
                s.push_str(cell);
                if i < 4 {
                    s.push_str(&" ".repeat(pad + 2));
                }
            }
            println!("{}", s.trim_end());
        };
        line(head);
        println!("{}", "-".repeat(w.iter().sum::<usize>() + 8));
        for c in &cells {
            line([&c[0], &c[1], &c[2], &c[3], &c[4]]);
        }
    }
}

/// 889568 → "889,568".
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

pub fn kib(kb: u64) -> String {
    if kb >= 10 * 1024 {
        format!("{:.1} MiB", kb as f64 / 1024.0)
    } else {
        format!("{kb} KiB")
    }
}
