# Sourced by the experiment scripts (ce_teacher_wikiqa.sh, teaching_teacher.sh), after they set
# $work. step OUTPUT COMMAND...: run COMMAND unless OUTPUT exists (so rerunning a script resumes
# it), and append its seconds to $work/times.txt. COMMAND should write OUTPUT only once it is
# complete (a .tmp renamed at the end, or a command that writes its output last).
step() {
  local out="$1"
  shift
  if [ -e "$out" ]; then
    echo "have $out"
    return
  fi
  echo "== $out"
  local t0
  t0=$(date +%s)
  "$@"
  echo "$(basename "$out") $(($(date +%s) - t0)) s" | tee -a "$work/times.txt"
}
