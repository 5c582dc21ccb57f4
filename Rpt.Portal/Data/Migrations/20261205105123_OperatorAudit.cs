using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Rpt.Portal.Data.Migrations
{
    /// <inheritdoc />
    public partial class OperatorAudit : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "operator_audit",
                columns: table => new
                {
                    id = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    seq = table.Column<long>(type: "INTEGER", nullable: false),
                    at = table.Column<long>(type: "INTEGER", nullable: false),
                    actor = table.Column<string>(type: "TEXT", maxLength: 320, nullable: false),
                    origin = table.Column<string>(type: "TEXT", maxLength: 320, nullable: false),
                    action = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    tenant_id = table.Column<string>(type: "TEXT", maxLength: 320, nullable: true),
                    subject = table.Column<string>(type: "TEXT", maxLength: 320, nullable: true),
                    old_value = table.Column<string>(type: "TEXT", nullable: true),
                    new_value = table.Column<string>(type: "TEXT", nullable: true),
                    prev_hash = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    hash = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_operator_audit", x => x.id);
                });

            migrationBuilder.CreateIndex(
                name: "ix_operator_audit_tenant",
                table: "operator_audit",
                columns: new[] { "tenant_id", "seq" });

            migrationBuilder.CreateIndex(
                name: "ux_operator_audit_seq",
                table: "operator_audit",
                column: "seq",
                unique: true);

            // The audit log is append-only, as the ledger is (docs/RULES.md, "The audit log").
            migrationBuilder.Sql("CREATE TRIGGER operator_audit_no_update BEFORE UPDATE ON operator_audit BEGIN SELECT RAISE(ABORT, 'operator_audit is append-only: rows cannot be updated'); END;");
            migrationBuilder.Sql("CREATE TRIGGER operator_audit_no_delete BEFORE DELETE ON operator_audit BEGIN SELECT RAISE(ABORT, 'operator_audit is append-only: rows cannot be deleted'); END;");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql("DROP TRIGGER IF EXISTS operator_audit_no_update;");
            migrationBuilder.Sql("DROP TRIGGER IF EXISTS operator_audit_no_delete;");
            migrationBuilder.DropTable(
                name: "operator_audit");
        }
    }
}
